"""Reward model pages: the list and the training form, a model's page (live progress, curves, the accuracy
table against people, mean scores per generator, scoring campaigns), its JSON, and the scoring endpoint.

Staff only. Training and campaign scoring run as jobs on the gpu queue; the scoring endpoint scores a few
uploaded images in the web process (each upload goes through the image ingestion checks first).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from django.contrib import messages
from django.db.models import Avg, Count
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate.models import Campaign, Generator
from annotate.services.images import ImageRejected, image_check
from core.http import HtmxHttpRequest
from core.models import Job
from core.permissions import admin_required, is_admin
from scoring import charts
from scoring.forms import RewardModelTrainForm, ScoreCampaignsForm
from scoring.jobs import SCORE
from scoring.models import ImageScore, RewardModel
from scoring.services.vpscore import (
    accuracy_table,
    load_scorer,
    reward_model_score_start,
    reward_model_train_start,
)

MAX_SCORE_IMAGES = 16
MAX_PROMPT_CHARS = 2000


@admin_required
def reward_model_list(request: HtmxHttpRequest) -> HttpResponse:
    """Every reward model, and the form that starts training a new one."""
    form = RewardModelTrainForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            reward_model = reward_model_train_start(
                name=data["name"],
                backbone=data["backbone"].strip(),
                backbone_kind=data["backbone_kind"],
                campaigns=list(data["campaigns"]),
                aspects=list(data["aspects"]),
                label_source=data["label_source"],
                hyperparameters=form.hyperparameters(),
                created_by=request.user,
            )
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Training {reward_model.name} on the gpu queue.")
            return redirect("scoring:reward-model", pk=reward_model.pk)
    models = RewardModel.objects.select_related("job").order_by("-created_at")
    return render(
        request,
        "scoring/reward_model_list.html",
        {"form": form, "reward_models": models},
        status=422 if form.errors else 200,
    )


def _curves(reward_model: RewardModel) -> dict[str, Any]:
    history = reward_model.metrics.get("history", [])
    loss = [(h["step"], h["loss"]) for h in history if h.get("event") == "train" and "loss" in h]
    evals = [h for h in history if h.get("event") == "eval"]
    aspects = sorted({a for h in evals for a in h.get("accuracy", {})})
    accuracy = [
        charts.Curve(
            aspect,
            [(h["step"], h["accuracy"][aspect]) for h in evals if aspect in h["accuracy"]],
            charts.SERIES[k % len(charts.SERIES)],
        )
        for k, aspect in enumerate(aspects)
    ]
    return {
        "loss": charts.curve_chart(
            [charts.Curve("training loss", loss)], title="Training loss (pairwise)", y_label="loss"
        ),
        "accuracy": charts.curve_chart(
            accuracy,
            title="Validation accuracy per aspect",
            y_label="accuracy",
            domain=(0.0, 1.0),
            reference=0.5,
        ),
    }


def generator_score_means(reward_model: RewardModel, campaign: Campaign) -> dict[str, Any]:
    """Mean score per generator and aspect over the campaign's images: {"aspects", "rows"}."""
    rows = (
        ImageScore.objects.filter(reward_model=reward_model, image__prompt__campaigns=campaign)
        .values("image__generator_id", "aspect__key")
        .annotate(mean=Avg("score"), n=Count("id"))
    )
    table: dict[int, dict[str, Any]] = {}
    aspects: set[str] = set()
    for r in rows:
        aspects.add(r["aspect__key"])
        table.setdefault(r["image__generator_id"], {})[r["aspect__key"]] = {"mean": r["mean"], "n": r["n"]}
    names = dict(Generator.objects.filter(pk__in=table).values_list("pk", "name"))
    ordered = sorted(table.items(), key=lambda kv: -(kv[1].get("overall", {}).get("mean") or 0.0))
    keys = sorted(aspects - {"overall"}) + (["overall"] if "overall" in aspects else [])
    return {
        "aspects": keys,
        "rows": [
            {"generator": names.get(g, str(g)), "cells": [cells.get(k) for k in keys]} for g, cells in ordered
        ],
    }


def _scored_campaigns(reward_model: RewardModel) -> list[Campaign]:
    scored = ImageScore.objects.filter(reward_model=reward_model).values("image__prompt__campaigns")
    return list(Campaign.objects.filter(pk__in=scored).order_by("name"))


@admin_required
@require_GET
def reward_model_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    reward_model = get_object_or_404(RewardModel.objects.select_related("job", "annotator"), pk=pk)
    ready = reward_model.status == RewardModel.Status.READY
    means = [
        {"campaign": c, "table": generator_score_means(reward_model, c)}
        for c in _scored_campaigns(reward_model)
    ]
    score_jobs = Job.objects.filter(kind=SCORE, params__reward_model_id=reward_model.pk).order_by("-pk")[:5]
    context = {
        "reward_model": reward_model,
        "job": reward_model.job,
        "curves": _curves(reward_model),
        "table": accuracy_table(reward_model, n_resamples=500) if ready else None,
        "means": means,
        "score_form": ScoreCampaignsForm(initial={"campaigns": list(reward_model.campaigns.all())}),
        "score_jobs": score_jobs,
        "best": reward_model.metrics.get("best"),
    }
    return render(request, "scoring/reward_model_detail.html", context)


@admin_required
@require_GET
def reward_model_progress(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Polled every 2 s while the training job runs; reloads the page when it finishes."""
    reward_model = get_object_or_404(RewardModel.objects.select_related("job"), pk=pk)
    response = render(
        request,
        "scoring/reward_model_detail.html#training-progress",
        {"reward_model": reward_model, "job": reward_model.job, "curves": _curves(reward_model)},
    )
    if reward_model.job is not None and reward_model.job.is_finished:
        response["HX-Refresh"] = "true"
    return response


@admin_required
@require_POST
def reward_model_score(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Start the job that scores the chosen campaigns' images and writes the model's pair judgments."""
    reward_model = get_object_or_404(RewardModel, pk=pk)
    form = ScoreCampaignsForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose at least one campaign to score.")
        return redirect("scoring:reward-model", pk=pk)
    try:
        job = reward_model_score_start(
            reward_model=reward_model, campaigns=list(form.cleaned_data["campaigns"]), created_by=request.user
        )
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("scoring:reward-model", pk=pk)
    messages.success(request, f"Scoring job {job.pk} started on the gpu queue.")
    return redirect("scoring:reward-model", pk=pk)


def _json_guard(request: HtmxHttpRequest) -> JsonResponse | None:
    if not request.user.is_authenticated:
        return JsonResponse({"error": "authentication required"}, status=401)
    if not is_admin(request.user):
        return JsonResponse({"error": "admins only"}, status=403)
    return None


@require_GET
def reward_model_json(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The reward model's settings, training metrics and accuracy table as JSON."""
    if (refused := _json_guard(request)) is not None:
        return refused
    reward_model = get_object_or_404(RewardModel, pk=pk)
    ready = reward_model.status == RewardModel.Status.READY
    body = {
        "id": reward_model.pk,
        "name": reward_model.name,
        "status": reward_model.status,
        "is_demo": reward_model.is_demo,
        "backbone": reward_model.backbone,
        "backbone_kind": reward_model.backbone_kind,
        "label_source": reward_model.label_source,
        "annotator_id": reward_model.annotator_id,
        "aspects": list(reward_model.aspects.values_list("key", flat=True)),
        "campaigns": list(reward_model.campaigns.values_list("slug", flat=True)),
        "hyperparameters": reward_model.hyperparameters,
        "job_id": reward_model.job_id,
        "metrics": reward_model.metrics,
        "accuracy": accuracy_table(reward_model) if ready else None,
    }
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})


class _ScorerCache:
    """The last loaded checkpoint per reward model, so repeated endpoint calls do not reload it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[str, Any]] = {}

    def get(self, reward_model: RewardModel) -> Any:
        with self._lock:
            entry = self._entries.get(reward_model.pk)
            if entry is not None and entry[0] == reward_model.checkpoint:
                return entry[1]
            with tempfile.TemporaryDirectory() as tmp:
                scorer = load_scorer(reward_model, Path(tmp))
            self._entries = {reward_model.pk: (reward_model.checkpoint, scorer)}  # keep one model loaded
            return scorer


SCORERS = _ScorerCache()


@require_POST
def reward_model_score_images(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """POST `prompt` and one or more `images` (multipart): the model's scores per aspect for each image.

    Every upload goes through the same checks as ingested images (size, format, pixels, damage); one bad
    file refuses the whole request with its reason, before anything is scored.
    """
    if (refused := _json_guard(request)) is not None:
        return refused
    reward_model = get_object_or_404(RewardModel, pk=pk)
    if reward_model.status != RewardModel.Status.READY or not reward_model.checkpoint:
        return JsonResponse(
            {"error": f"reward model {reward_model.name!r} has not finished training"}, status=409
        )
    prompt = request.POST.get("prompt", "").strip()
    if not prompt:
        return JsonResponse(
            {"error": "send the prompt the images were made for (field 'prompt')"}, status=400
        )
    if len(prompt) > MAX_PROMPT_CHARS:
        return JsonResponse({"error": f"the prompt is longer than {MAX_PROMPT_CHARS} characters"}, status=400)
    uploads = request.FILES.getlist("images")
    if not uploads:
        return JsonResponse({"error": "send one or more image files (field 'images')"}, status=400)
    if len(uploads) > MAX_SCORE_IMAGES:
        return JsonResponse(
            {"error": f"{len(uploads)} images sent; at most {MAX_SCORE_IMAGES} per request"}, status=400
        )
    from io import BytesIO

    from PIL import Image as PILImage

    pictures = []
    for upload in uploads:
        try:
            checked = image_check(data=upload.read(), filename=upload.name or "")
        except ImageRejected as exc:
            return JsonResponse({"error": str(exc), "filename": upload.name}, status=400)
        picture = PILImage.open(BytesIO(checked.data))
        picture.load()
        pictures.append(picture)
    scorer = SCORERS.get(reward_model)
    scores = scorer.score(prompt, pictures)
    return JsonResponse(
        {
            "reward_model": {
                "id": reward_model.pk,
                "name": reward_model.name,
                "is_demo": reward_model.is_demo,
            },
            "prompt": prompt,
            "aspects": list(scores),
            "images": [
                {"filename": upload.name, "scores": {a: round(v[i], 6) for a, v in scores.items()}}
                for i, upload in enumerate(uploads)
            ],
            "note": "scores are normalised over the training images: 0 is average, 1 is one standard deviation",
        },
        json_dumps_params={"ensure_ascii": False},
    )
