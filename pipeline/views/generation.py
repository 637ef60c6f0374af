"""Admin pages for prompts and images: import prompts, polish them, generate a campaign's images."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from annotate.models import Campaign, Generator, Image
from annotate.services.pairs import CORRUPTED_GENERATOR, fidelity_gold_pairs_create
from core.permissions import admin_required
from pipeline.forms import GenerateForm, GeneratorRegisterForm, GoldPairsForm, PolishForm, PromptImportForm
from pipeline.services.generation import (
    demo_prompts_outside_grammar,
    demo_skip_message,
    generation_start,
    generator_register,
)
from pipeline.services.polish import polish_start
from pipeline.services.prompt_import import PromptImportError, prompts_import


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
            return redirect("pipeline:campaign-generate", slug=campaign.slug)
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
            if any(g.kind == Generator.Kind.DEMO for g in data["generators"]):
                prompts = list(campaign.prompts.all())
                outside = demo_prompts_outside_grammar(prompts)
                if outside:
                    messages.warning(
                        request, "The demo generator " + demo_skip_message(len(outside), len(prompts)) + "."
                    )
            return redirect("core:job-detail", pk=job.pk)
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
    """Upload a prompt file; either every row is imported or the page lists every error.

    Opened from a campaign (``?campaign=slug``) the form imports into it; afterwards the page says where
    the prompts went, and an import into a campaign lands on that campaign's prompt list.
    """
    origin = Campaign.objects.filter(slug=request.GET.get("campaign", "")).first()
    initial = {"campaign": origin} if origin else {}
    form = PromptImportForm(request.POST or None, request.FILES or None, initial=initial)
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
            n = len(set(result.prompt_ids))
            if campaign is not None:
                messages.success(
                    request,
                    f"Imported {upload.name}: {result.summary()}. {n} prompt{'s' * (n != 1)} are now in "
                    f"the campaign {campaign.name}.",
                )
                return redirect("annotate:campaign-prompts", slug=campaign.slug)
            messages.success(
                request,
                f"Imported {upload.name}: {result.summary()}. They were added to no campaign: import again "
                "with a campaign chosen, or use manage.py import_prompts --campaign.",
            )
            return redirect("pipeline:prompt-import")
    context = {"form": form, "errors": errors, "origin": origin}
    return render(request, "pipeline/generation/prompt_import.html", context)


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
            return redirect("core:job-detail", pk=job.pk)
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
            return redirect("pipeline:generator-list")
    generators = Generator.objects.order_by("kind", "name")
    return render(request, "pipeline/generation/generators.html", {"form": form, "generators": generators})
