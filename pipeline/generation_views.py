"""Admin pages for prompts and images: import prompts, polish them, generate a campaign's images."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from annotate.models import Campaign, Generator, Image
from annotate.permissions import admin_required
from annotate.services.pairs import CORRUPTED_GENERATOR, fidelity_gold_pairs_create
from pipeline.generation.diffusers_backend import DTYPES
from pipeline.models import AIJudgeConfig, validate_env_var_name
from pipeline.services.generation import PAIR_STRATEGIES, generation_start, generator_register
from pipeline.services.polish import polish_start
from pipeline.services.prompt_import import FORMATS, PromptImportError, prompts_import

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
        validators=[validate_env_var_name],
        label="API key variable",
        help_text="The name of the environment variable, not the key.",
    )
    replace_in_campaign = forms.BooleanField(
        required=False, label="Replace raw prompts in the campaign with their polished versions"
    )


@admin_required
def campaign_generate(request: HttpRequest, slug: str) -> HttpResponse:
    """Start a generation job for a campaign, or make fidelity gold pairs from its images."""
    campaign = get_object_or_404(Campaign, slug=slug)
    posted = request.POST if request.method == "POST" else None
    gold = request.POST.get("action") == "gold"
    form = GenerateForm(None if gold else posted)
    gold_form = GoldPairsForm(posted if gold else None)
    if gold and gold_form.is_valid():
        try:
            pairs = fidelity_gold_pairs_create(campaign=campaign, count=gold_form.cleaned_data["count"])
        except ValueError as exc:
            gold_form.add_error(None, str(exc))
        else:
            messages.success(request, f"{len(pairs)} fidelity gold pairs are in the campaign.")
            return redirect("campaign-generate", slug=campaign.slug)
    elif form.is_bound and form.is_valid():
        data: dict[str, Any] = form.cleaned_data
        try:
            job = generation_start(
                campaign=campaign,
                generators=list(data["generators"]),
                images_per_prompt=data["images_per_prompt"],
                batch_size=data["batch_size"],
                seed=data["seed"] or 0,
                pair_strategy=data["pair_strategy"],
                pairs_per_prompt=data["pairs_per_prompt"],
                created_by=request.user,
            )
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Started generation job {job.pk} on the {job.queue} queue.")
            return redirect("job-detail", pk=job.pk)
    context = {
        "campaign": campaign,
        "form": form,
        "gold_form": gold_form,
        "prompt_count": campaign.prompts.count(),
        "image_count": Image.objects.filter(prompt__campaigns=campaign)
        .exclude(generator__name=CORRUPTED_GENERATOR)
        .count(),
        "gold_pairs": campaign.pairs.filter(is_gold=True).count(),
    }
    return render(request, "pipeline/generation/generate.html", context)


@admin_required
def prompt_import(request: HttpRequest) -> HttpResponse:
    """Upload a prompt file; either every row is imported or the page lists every error."""
    form = PromptImportForm(request.POST or None, request.FILES or None)
    errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        campaign = form.cleaned_data["campaign"]
        try:
            result = prompts_import(
                data=upload.read(),
                filename=upload.name,
                format=form.cleaned_data["format"] or None,
                campaign=campaign,
                unsafe=form.cleaned_data["unsafe"],
            )
        except PromptImportError as exc:
            errors = exc.errors
        else:
            messages.success(request, f"Imported {upload.name}: {result.summary()}.")
            return redirect("prompt-import")
    return render(request, "pipeline/generation/prompt_import.html", {"form": form, "errors": errors})


@admin_required
def polish_launch(request: HttpRequest) -> HttpResponse:
    """Start a job that rewrites a campaign's raw prompts with a text LLM."""
    initial = {}
    if request.GET.get("campaign"):
        initial["campaign"] = Campaign.objects.filter(slug=request.GET["campaign"]).first()
    form = PolishForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = polish_start(
                campaign=data["campaign"],
                ai_config=data["ai_config"],
                base_url=data["base_url"],
                model=data["model"],
                api_key_env=data["api_key_env"],
                replace_in_campaign=data["replace_in_campaign"],
                created_by=request.user,
            )
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Started polish job {job.pk}.")
            return redirect("job-detail", pk=job.pk)
    return render(request, "pipeline/generation/polish.html", {"form": form})


@admin_required
def generator_list(request: HttpRequest) -> HttpResponse:
    """The generators, and a form that registers a diffusers pipeline with checked parameters."""
    form = GeneratorRegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            generator = generator_register(
                name=data["name"],
                model_id=data["model_id"],
                params=form.params(),
                description=data["description"],
            )
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Registered generator {generator.name}.")
            return redirect("generator-list")
    generators = Generator.objects.order_by("kind", "name")
    return render(request, "pipeline/generation/generators.html", {"form": form, "generators": generators})
