"""Forms of the reward model pages: train a VP-Score, score campaigns with one."""

from __future__ import annotations

from typing import Any

from django import forms

from annotate.models import Annotator, Aspect, Campaign
from scoring.models import RewardModel


class RewardModelTrainForm(forms.Form):
    """What a training run learns from (label source, campaigns, aspects) and its main settings."""

    name = forms.CharField(max_length=200)
    backbone_kind = forms.ChoiceField(
        choices=[("blip", "BLIP (ImageReward-style)"), ("clip", "CLIP (PickScore / HPS-style)")],
        initial="blip",
        label="Backbone kind",
    )
    backbone = forms.CharField(
        max_length=300,
        label="Backbone: hub id or local folder",
        initial="Salesforce/blip-itm-base-coco",
        help_text="Where the GPU worker loads it from with from_pretrained (a local folder needs no download).",
    )
    label_source = forms.ChoiceField(choices=RewardModel.LabelSource.choices, initial="ai")
    campaigns = forms.ModelMultipleChoiceField(
        queryset=Campaign.objects.order_by("name"), widget=forms.CheckboxSelectMultiple
    )
    aspects = forms.ModelMultipleChoiceField(
        queryset=Aspect.objects.all(), widget=forms.CheckboxSelectMultiple
    )
    ai_judges = forms.ModelMultipleChoiceField(
        queryset=Annotator.objects.filter(kind=Annotator.Kind.AI).order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="AI judges",
        help_text="None ticked: every AI judge's first trial.",
    )
    human_weight = forms.FloatField(
        min_value=0.0, initial=1.0, help_text="Weight of a human-majority row when both sources train."
    )
    include_flagged = forms.BooleanField(required=False, label="Count flagged workers")
    ties = forms.ChoiceField(
        choices=[("drop", "Drop ties"), ("soft", "Ties as soft 0.5 targets")], initial="drop"
    )
    validation = forms.ChoiceField(
        choices=[
            ("human", "Human majority on held-out prompts (when there is one)"),
            ("labels", "The label source on held-out prompts"),
        ],
        initial="human",
    )
    freeze_fraction = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.7)
    learning_rate = forms.FloatField(min_value=0.0, max_value=1.0, initial=1e-5)
    batch_size = forms.IntegerField(min_value=1, max_value=1024, initial=16)
    grad_accum = forms.IntegerField(min_value=1, max_value=256, initial=1, label="Gradient accumulation")
    epochs = forms.IntegerField(min_value=1, max_value=1000, initial=10)
    warmup_steps = forms.IntegerField(min_value=0, initial=0)
    val_fraction = forms.FloatField(min_value=0.05, max_value=0.9, initial=0.2, label="Held-out prompts")
    seed = forms.IntegerField(min_value=0, initial=0)

    LABEL_FIELDS = ("label_source", "human_weight", "ties", "validation", "include_flagged")
    SETTING_FIELDS = (
        "freeze_fraction",
        "learning_rate",
        "batch_size",
        "grad_accum",
        "epochs",
        "warmup_steps",
        "val_fraction",
        "seed",
    )

    def label_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.LABEL_FIELDS]

    def setting_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.SETTING_FIELDS]

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if RewardModel.objects.filter(name=name).exists():
            raise forms.ValidationError("A reward model with this name exists; choose another name.")
        return name

    def hyperparameters(self) -> dict[str, Any]:
        data = self.cleaned_data
        hp = {key: data[key] for key in (*self.LABEL_FIELDS[1:], *self.SETTING_FIELDS)}
        if data["ai_judges"]:
            hp["ai_judge_ids"] = sorted(j.pk for j in data["ai_judges"])
        return hp


class ScoreCampaignsForm(forms.Form):
    campaigns = forms.ModelMultipleChoiceField(
        queryset=Campaign.objects.order_by("name"), widget=forms.CheckboxSelectMultiple
    )
