"""Forms of pipeline's admin pages: generation, generators, prompt import and polishing, AI annotation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from annotate.models import Campaign, Generator
from pipeline.generation.diffusers_backend import DTYPES
from pipeline.models import AIJudgeConfig, validate_api_key_env
from pipeline.services.annotation import EXECUTIONS
from pipeline.services.annotation_calls import SELECTIONS
from pipeline.services.generation import PAIR_STRATEGIES
from pipeline.services.prompt_import import FORMATS

PAIR_STRATEGY_LABELS = {
    "all": "All pairs of a prompt's images",
    "cross_generator": "Only pairs from different generators",
    "sample": "A random sample per prompt",
}


class GenerateForm(forms.Form):
    generators = forms.ModelMultipleChoiceField(
        queryset=Generator.objects.exclude(kind=Generator.Kind.IMPORTED),
        widget=forms.CheckboxSelectMultiple,
    )
    images_per_prompt = forms.IntegerField(min_value=1, max_value=64, initial=4)
    batch_size = forms.IntegerField(
        min_value=1, max_value=64, initial=4, help_text="Images per pipeline call; halved on out-of-memory."
    )
    seed = forms.IntegerField(min_value=0, initial=0, help_text="The same seed reproduces the same images.")
    pair_strategy = forms.ChoiceField(choices=[(s, PAIR_STRATEGY_LABELS[s]) for s in PAIR_STRATEGIES])
    pairs_per_prompt = forms.IntegerField(min_value=1, required=False, help_text="For the random sample.")


class GeneratorRegisterForm(forms.Form):
    name = forms.CharField(max_length=100)
    model_id = forms.CharField(
        max_length=500,
        label="Hub id or local path",
        help_text="For example stable-diffusion-v1-5/stable-diffusion-v1-5, or /models/sdxl on the GPU worker.",
    )
    scheduler = forms.CharField(
        required=False,
        help_text="A diffusers scheduler class, e.g. EulerDiscreteScheduler; empty keeps the model's.",
    )
    steps = forms.IntegerField(min_value=1, max_value=1000, initial=30)
    guidance_scale = forms.FloatField(min_value=0, max_value=50, initial=7.5, label="Guidance scale")
    width = forms.IntegerField(
        min_value=8, required=False, help_text="A multiple of 8; empty: the model's size."
    )
    height = forms.IntegerField(
        min_value=8, required=False, help_text="A multiple of 8; empty: the model's size."
    )
    dtype = forms.ChoiceField(choices=[(d, d) for d in DTYPES], initial="float16", label="Dtype")
    device = forms.CharField(initial="cuda", help_text="cpu, cuda or cuda:N (where the GPU worker runs it).")
    negative_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def params(self) -> dict[str, Any]:
        """The Generator.params of the cleaned form."""
        keys = (
            "scheduler",
            "steps",
            "guidance_scale",
            "width",
            "height",
            "dtype",
            "device",
            "negative_prompt",
        )
        return {key: self.cleaned_data[key] for key in keys}


class GoldPairsForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=1000, initial=10, label="Gold pairs to make")


class PromptImportForm(forms.Form):
    file = forms.FileField(help_text="CSV with a prompt column, JSONL, plain text, or DiffusionDB parquet.")
    format = forms.ChoiceField(
        choices=[("", "From the file name")] + [(f, f) for f in FORMATS], required=False
    )
    campaign = forms.ModelChoiceField(Campaign.objects.all(), required=False, empty_label="(none)")
    unsafe = forms.ChoiceField(
        choices=[
            ("flag", "Flag prompts with unsafe words"),
            ("skip", "Skip prompts with unsafe words"),
            ("off", "No unsafe-word filter"),
        ],
        initial="flag",
        label="Unsafe words",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = settings.PROMPT_IMPORT_MAX_BYTES
        if upload is not None and upload.size > limit:
            raise forms.ValidationError(f"The file is {upload.size:,} bytes; the limit is {limit:,} bytes.")
        return upload


class PolishForm(forms.Form):
    campaign = forms.ModelChoiceField(Campaign.objects.all())
    ai_config = forms.ModelChoiceField(
        AIJudgeConfig.objects.filter(provider=AIJudgeConfig.Provider.OPENAI),
        required=False,
        label="Endpoint configuration",
        help_text="An OpenAI-compatible AI configuration; or fill in the fields below.",
    )
    base_url = forms.URLField(required=False, label="Base URL", assume_scheme="https")
    model = forms.CharField(required=False)
    api_key_env = forms.CharField(
        required=False,
        validators=[validate_api_key_env],
        label="API key variable",
        help_text="The name of the environment variable, not the key.",
    )
    replace_in_campaign = forms.BooleanField(
        required=False, label="Replace raw prompts in the campaign with their polished versions"
    )


class AnnotateForm(forms.Form):
    campaign = forms.ModelChoiceField(Campaign.objects.order_by("name"))
    judge = forms.ModelChoiceField(AIJudgeConfig.objects.order_by("name"), label="AI judge")
    selection = forms.ChoiceField(
        choices=list(SELECTIONS.items()), initial="unlabelled", widget=forms.RadioSelect
    )
    sample_n = forms.IntegerField(min_value=1, required=False, label="n (random sample)")
    seed = forms.IntegerField(min_value=0, initial=0, required=False, help_text="Seeds the random sample.")
    execution = forms.ChoiceField(choices=list(EXECUTIONS.items()), initial="online")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("selection") == "sample" and not data.get("sample_n"):
            self.add_error("sample_n", "Give the number of pairs to sample.")
        judge = data.get("judge")
        if data.get("execution") == "batch" and judge and judge.provider != AIJudgeConfig.Provider.OPENAI:
            self.add_error("execution", "The Batch API needs an OpenAI-compatible judge.")
        return data
