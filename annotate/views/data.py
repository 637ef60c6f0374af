"""Admin pages to see the data: the pair browser, one pair with every judgment, review, a worker's history."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotate.forms import RejectForm
from annotate.models import Annotator, Campaign, Judgment, Pair
from annotate.selectors import (
    DISAGREEMENT_PHRASES,
    DISAGREEMENTS,
    PAIR_SORTS,
    PAIR_STATUSES,
    judgments_by_assignment,
    pair_browser,
    pair_judgment_counts,
    pair_judgments,
    worker_history,
)
from annotate.services.review import judgment_reject, judgment_unreject
from core.http import HtmxHttpRequest
from core.permissions import admin_required

PAIRS_PAGE_SIZE = 24
HISTORY_PAGE_SIZE = 50


@admin_required
def pair_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The campaign's pairs, filtered by aspect, status, gold and disagreement, sorted and paginated."""
    campaign = get_object_or_404(Campaign, slug=slug)
    aspects = list(campaign.aspects.order_by("order", "key"))
    chosen = {
        name: request.GET.get(name, "") for name in ("aspect", "status", "gold", "disagreement", "prompt")
    }
    sort = request.GET.get("sort", "id") or "id"
    aspect = next((a for a in aspects if a.key == chosen["aspect"]), None)
    error = ""
    if chosen["aspect"] and aspect is None:
        error = f"{chosen['aspect']!r} is not an aspect of this campaign."
    try:
        pairs = pair_browser(
            campaign=campaign,
            aspect=aspect,
            status=chosen["status"],
            gold=chosen["gold"],
            disagreement=chosen["disagreement"],
            sort=sort,
            prompt_id=int(chosen["prompt"]) if chosen["prompt"].isdigit() else None,
        )
    except ValueError as exc:
        error, pairs = str(exc), Pair.objects.none()
    page = Paginator(pairs, PAIRS_PAGE_SIZE).get_page(request.GET.get("page"))
    counts = pair_judgment_counts(pair_ids=[p.pk for p in page])
    kept = {k: v for k, v in {**chosen, "sort": sort}.items() if v and not (k == "sort" and v == "id")}
    context = {
        "campaign": campaign,
        "aspects": aspects,
        "chosen": chosen,
        "sort": sort,
        "statuses": PAIR_STATUSES,
        "disagreements": DISAGREEMENTS,
        "phrase": DISAGREEMENT_PHRASES.get(chosen["disagreement"], ""),
        "sorts": {key: label for key, (label, _) in PAIR_SORTS.items()},
        "page": page,
        "rows": [(pair, counts[pair.pk]) for pair in page],
        "query": urlencode(kept),
        "error": error,
    }
    template = "annotate/pair_list.html#results" if request.htmx else "annotate/pair_list.html"
    return render(request, template, context, status=400 if error else 200)


@admin_required
def pair_detail(request: HtmxHttpRequest, slug: str, pair_id: int) -> HttpResponse:
    """One pair: the prompt, both images large, and every judgment with its rationale, scores and timing."""
    campaign = get_object_or_404(Campaign, slug=slug)
    pair = get_object_or_404(
        Pair.objects.select_related(
            "prompt", "image_a__generator", "image_b__generator", "prompt__polished_from"
        ),
        pk=pair_id,
        campaign=campaign,
    )
    groups = pair_judgments(pair=pair)
    aspects = list(campaign.aspects.order_by("order", "key"))
    tally: dict[str, dict[str, int]] = {a.key: {"A": 0, "B": 0, "tie": 0} for a in aspects}
    for group in groups:
        if group["annotator"].kind != Annotator.Kind.HUMAN:
            continue
        for judgment in group["judgments"]:
            if judgment.rejected_at is None and judgment.aspect.key in tally:
                tally[judgment.aspect.key][judgment.choice] += 1
    context = {
        "campaign": campaign,
        "pair": pair,
        "groups": groups,
        "aspects": aspects,
        "tally": [(a, tally[a.key], pair.gold_answers.get(a.key) if pair.is_gold else None) for a in aspects],
        "back": request.GET.get("back", ""),
    }
    return render(request, "annotate/pair_detail.html", context)


@admin_required
@require_POST
def judgment_review(request: HtmxHttpRequest, judgment_id: int) -> HttpResponse:
    """Reject a judgment with a reason, or take the rejection back; htmx gets the judgment's row again."""
    judgment = get_object_or_404(
        Judgment.objects.select_related("pair__campaign", "aspect", "annotator"), pk=judgment_id
    )
    form = RejectForm(request.POST)
    status = 200
    if form.is_valid():
        if form.cleaned_data["undo"]:
            judgment_unreject(judgment=judgment)
        else:
            judgment_reject(judgment=judgment, by=request.user, reason=form.cleaned_data["reason"])
    else:
        status = 422
    if not request.htmx:
        pair = judgment.pair
        return redirect("annotate:pair-detail", slug=pair.campaign.slug, pair_id=pair.pk)
    context: dict[str, Any] = {"j": judgment, "review_errors": form.errors.get("reason", [])}
    return render(request, "annotate/pair_detail.html#judgment-row", context, status=status)


@admin_required
def worker_detail(request: HtmxHttpRequest, annotator_id: int) -> HttpResponse:
    """A worker's history: their campaigns with counters and status, and every pair they took, newest first."""
    annotator = get_object_or_404(Annotator.objects.select_related("user"), pk=annotator_id)
    campaign = Campaign.objects.filter(slug=request.GET.get("campaign", "")).first()
    history = worker_history(annotator=annotator, campaign=campaign)
    page = Paginator(history["assignments"], HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    judgments = judgments_by_assignment(assignment_ids=[a.pk for a in page])
    rows: list[dict[str, Any]] = [{"a": a, "judgments": judgments.get(a.pk, [])} for a in page]
    ai_judgments = None
    if annotator.kind != Annotator.Kind.HUMAN:
        found = Judgment.objects.filter(annotator=annotator).select_related("pair__campaign", "aspect")
        if campaign is not None:
            found = found.filter(pair__campaign=campaign)
        ai_judgments = Paginator(found.order_by("-id"), HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "annotator": annotator,
        "campaign": campaign,
        "links": history["links"],
        "page": page,
        "rows": rows,
        "ai_judgments": ai_judgments,
        "rejected": Judgment.objects.filter(annotator=annotator, rejected_at__isnull=False).count(),
        "pager_query": urlencode({"campaign": campaign.slug}) if campaign else "",
    }
    return render(request, "annotate/worker_detail.html", context)
