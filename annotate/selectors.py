"""Read-side queries for campaigns and their progress."""

from __future__ import annotations

import copy
import time
from typing import Any

from django.db.models import Count, F, Q, QuerySet

from annotate.models import Aspect, Campaign

# A campaign and its aspects change rarely but are read on every labeling request, so each web process
# keeps them this long. Edits reach other processes within this time; saves in this process clear it at
# once (see AnnotateConfig.ready). The overlap guard reads the campaign row itself (assignments.py).
LABELING_CAMPAIGN_TTL_S = 5.0
_labeling_campaigns: dict[str, tuple[float, Campaign, list[Aspect]]] = {}


def campaign_for_labeling(*, slug: str) -> tuple[Campaign, list[Aspect]] | None:
    """The campaign with this slug and its aspects in screen order, cached per process for a few seconds."""
    now = time.monotonic()
    cached = _labeling_campaigns.get(slug)
    if cached is None or cached[0] <= now:
        campaign = Campaign.objects.filter(slug=slug).first()
        if campaign is None:
            return None
        aspects = list(campaign.aspects.order_by("order", "key"))
        cached = (now + LABELING_CAMPAIGN_TTL_S, campaign, aspects)
        _labeling_campaigns[slug] = cached
    # A copy per request: callers may set attributes on it, and other threads share the cached one.
    return copy.copy(cached[1]), list(cached[2])


def campaign_for_labeling_forget(**_kwargs: Any) -> None:
    """Drop this process's cached campaigns (a signal receiver: a campaign or aspect was saved)."""
    _labeling_campaigns.clear()


def campaign_list_with_counts() -> QuerySet[Campaign]:
    """Campaigns with their pair and gold-pair counts, for the admin dashboard."""
    return Campaign.objects.annotate(
        n_pairs=Count("pairs", distinct=True),
        n_gold=Count("pairs", filter=Q(pairs__is_gold=True), distinct=True),
    ).order_by("-created_at")


def campaign_summary(*, campaign: Campaign) -> dict[str, Any]:
    """Headline numbers for one campaign: pairs, judgments by annotator kind, images."""
    from annotate.models import Image, Judgment

    judgments = Judgment.objects.filter(pair__campaign=campaign)
    return {
        "pairs": campaign.pairs.count(),
        "gold_pairs": campaign.pairs.filter(is_gold=True).count(),
        "images": Image.objects.filter(prompt__campaigns=campaign).count(),
        "prompts": campaign.prompts.count(),
        "human_judgments": judgments.filter(annotator__kind="human").count(),
        "ai_judgments": judgments.filter(annotator__kind="ai").count(),
    }


def campaign_progress(*, campaign: Campaign) -> dict[str, Any]:
    """Live progress: regular pairs complete / in progress / untouched, judgments per hour, active workers.

    Counts run on the (campaign, slots_*) indexes; the result is cached for a few seconds because the page
    polls it and a million-pair campaign takes tens of milliseconds to count.
    """
    from datetime import timedelta

    from django.core.cache import cache
    from django.utils import timezone

    from annotate.models import Assignment, CampaignWorker

    key = f"campaign-progress:{campaign.pk}:{campaign.humans_per_pair}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    now = timezone.now()
    regular = campaign.pairs.filter(is_gold=False)
    total = regular.count()
    complete = regular.filter(slots_submitted__gte=campaign.humans_per_pair).count()
    untouched = regular.filter(slots_taken=0).count()
    hour_ago = now - timedelta(hours=1)
    progress = {
        "total": total,
        "complete": complete,
        "untouched": untouched,
        "in_progress": max(0, total - complete - untouched),
        "complete_pct": round(100 * complete / total, 1) if total else 0.0,
        "in_progress_pct": round(100 * (total - complete - untouched) / total, 1) if total else 0.0,
        "per_hour": Assignment.objects.filter(
            campaign=campaign, status=Assignment.Status.SUBMITTED, submitted_at__gte=hour_ago
        ).count(),
        "active_workers": CampaignWorker.objects.filter(
            campaign=campaign, last_active_at__gte=now - timedelta(minutes=15)
        ).count(),
        "updated_at": now,
    }
    cache.set(key, progress, timeout=5)
    return progress


def campaign_worker_table(*, campaign: Campaign, limit: int = 50) -> list[Any]:
    """The most recently active workers of a campaign with count, gold accuracy and median seconds."""
    from statistics import median

    from annotate.models import Assignment, CampaignWorker

    links = list(
        CampaignWorker.objects.filter(campaign=campaign)
        .select_related("annotator")
        .order_by(F("last_active_at").desc(nulls_last=True), "-pk")[:limit]
    )
    seconds: dict[int, list[float]] = {link.annotator_id: [] for link in links}
    rows = Assignment.objects.filter(
        campaign=campaign, annotator_id__in=seconds, status=Assignment.Status.SUBMITTED
    ).values_list("annotator_id", "seconds_spent")
    for annotator_id, spent in rows:
        if spent is not None:
            seconds[annotator_id].append(spent)
    for link in links:
        times = seconds[link.annotator_id]
        link.median_seconds = median(times) if times else None  # type: ignore[attr-defined]
    return links


def judgments_for_reports(*, campaign: Campaign, include_flagged: bool = False) -> QuerySet[Any]:
    """A campaign's judgments for reports: AI judges always, humans only while active unless asked."""
    from annotate.models import Annotator, Judgment

    judgments = Judgment.objects.filter(pair__campaign=campaign)
    if include_flagged:
        return judgments
    return judgments.filter(
        Q(annotator__kind=Annotator.Kind.AI) | Q(annotator__status=Annotator.Status.ACTIVE)
    )


def worker_progress(*, campaign: Campaign, link: Any) -> dict[str, Any]:
    """What a worker sees of their own progress: pairs done and, with a quota, how many remain."""
    quota = campaign.worker_quota
    done = link.submitted
    return {
        "done": done,
        "quota": quota,
        "pct": min(100, round(100 * done / quota)) if quota else None,
    }
