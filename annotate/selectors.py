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


def campaign_warnings(*, campaign: Campaign) -> list[str]:
    """Settings of a campaign (saved or not) that cannot work as the admin probably expects, in words."""
    from annotate.models import CampaignWorker, Pair

    warnings: list[str] = []
    quota = campaign.worker_quota
    saved = campaign.pk is not None
    pairs = Pair.objects.filter(campaign=campaign) if saved else Pair.objects.none()
    n_gold = pairs.filter(is_gold=True).count() if saved else 0
    n_regular = pairs.filter(is_gold=False).count() if saved else 0

    if campaign.min_seconds_per_pair > 0:
        if campaign.flag_too_fast_share >= 1:
            warnings.append(
                "The too-fast share must be exceeded to flag a worker, and no share exceeds 100%: "
                "nobody will ever be flagged for speed. Lower it (e.g. 0.3)."
            )
        if quota is not None and campaign.min_submissions_for_flag > quota:
            warnings.append(
                f"Flagging for speed waits for {campaign.min_submissions_for_flag} submissions, but the quota "
                f"is {quota} pairs: nobody will ever be flagged for speed. Set the minimum to {quota} or less."
            )
    if campaign.gold_rate > 0 and saved and n_gold == 0:
        warnings.append(
            f"The gold rate is {campaign.gold_rate:g} but the campaign has no gold pairs: no worker will see "
            "one and gold accuracy will never be measured. Add gold pairs on Generate images, or set it to 0."
        )
    if campaign.gold_rate > 0 and (n_gold or not saved):
        if saved and n_gold < campaign.min_gold_for_status:
            warnings.append(
                f"Gold accuracy flags or blocks a worker after {campaign.min_gold_for_status} gold pairs, but "
                f"the campaign has only {n_gold}, and nobody sees a gold pair twice: the gold thresholds "
                "can never trigger."
            )
        elif quota is not None and quota * campaign.gold_rate < campaign.min_gold_for_status:
            expected = quota * campaign.gold_rate
            warnings.append(
                f"Within a quota of {quota} pairs a worker sees about {expected:.1f} gold pairs (gold rate "
                f"{campaign.gold_rate:g}), fewer than the {campaign.min_gold_for_status} needed before gold "
                "accuracy flags or blocks anyone."
            )
    if campaign.gold_rate == 0 and n_gold:
        warnings.append(f"The campaign has {n_gold} gold pairs but a gold rate of 0: nobody will see them.")
    if not campaign.allow_tie and saved:
        tie_gold = sum(
            1
            for answers in pairs.filter(is_gold=True).values_list("gold_answers", flat=True)
            if "tie" in (answers or {}).values()
        )
        if tie_gold:
            warnings.append(
                f"{tie_gold} gold pair{'s' if tie_gold != 1 else ''} expect a tie, but ties are not allowed: "
                "every worker will get them wrong."
            )
    if saved and quota is not None and n_regular + n_gold and quota > n_regular + n_gold:
        warnings.append(
            f"The quota is {quota} pairs but the campaign has only {n_regular + n_gold}: workers finish "
            "before reaching it."
        )
    if quota is not None and campaign.min_labeled_pairs is not None and campaign.min_labeled_pairs > quota:
        warnings.append(
            f"The completion code needs {campaign.min_labeled_pairs} labeled pairs but the quota stops a "
            f"worker at {quota}: workers earn the code only when no pair is left for them. Lower it to "
            f"{quota} or less."
        )
    if campaign.completion_url and campaign.completion_code:
        warnings.append(
            "Both a completion URL and a completion code are set: workers are sent to the URL and never "
            "see the code."
        )
    if campaign.status == Campaign.Status.ACTIVE and saved and n_regular + n_gold == 0:
        warnings.append("The campaign is active but has no pairs yet: workers will find nothing to label.")
    if campaign.access == Campaign.Access.INVITE and saved:
        members = CampaignWorker.objects.filter(campaign=campaign, invited_at__isnull=False).count()
        if members < campaign.humans_per_pair:
            warnings.append(
                f"Invite only with {members} member{'s' if members != 1 else ''}, but each pair needs "
                f"{campaign.humans_per_pair} different people: no pair can be completed. Invite more members."
            )
    return warnings


# --- the pair browser ------------------------------------------------------------------------------

PAIR_STATUSES = {"unlabelled": "Unlabelled", "in_progress": "In progress", "complete": "Complete"}
DISAGREEMENTS = {
    "humans": "Humans split",
    "ai_vs_humans": "AI differs from the human majority",
    "ai_vs_ai": "Two AI judges differ",
}
DISAGREEMENT_PHRASES = {
    "humans": "the humans split",
    "ai_vs_humans": "an AI judge differs from the human majority",
    "ai_vs_ai": "two AI judges differ",
}
PAIR_SORTS = {
    "id": ("Oldest first", ["id"]),
    "-id": ("Newest first", ["-id"]),
    "-humans": ("Most human judgment sets", ["-slots_submitted", "id"]),
    "humans": ("Fewest human judgment sets", ["slots_submitted", "id"]),
    "prompt": ("Prompt A–Z", ["prompt__text", "id"]),
}


def _choice_counts_sql(*, kind_condition: str, aspect_condition: str) -> str:
    # Per (pair, aspect): how many not-rejected judgments chose A, B and tie. Portable SQL (SQLite, PostgreSQL).
    return f"""
        SELECT j.pair_id, j.aspect_id,
               SUM(CASE WHEN j.choice = 'A' THEN 1 ELSE 0 END) AS n_a,
               SUM(CASE WHEN j.choice = 'B' THEN 1 ELSE 0 END) AS n_b,
               SUM(CASE WHEN j.choice = 'tie' THEN 1 ELSE 0 END) AS n_tie
        FROM annotate_judgment j
        JOIN annotate_pair p ON p.id = j.pair_id
        JOIN annotate_annotator an ON an.id = j.annotator_id
        WHERE p.campaign_id = %s AND j.rejected_at IS NULL AND {kind_condition} {aspect_condition}
        GROUP BY j.pair_id, j.aspect_id
    """


def disagreement_sql(*, kind: str, campaign_id: int, aspect_id: int | None) -> tuple[str, list[Any]]:
    """SQL selecting the ids of a campaign's pairs with the given kind of disagreement (not-rejected labels).

    humans: two humans chose differently on an aspect. ai_vs_humans: an AI judge's first trial differs
    from the humans' strict majority (a choice with more votes than each other). ai_vs_ai: two AI judges'
    first trials differ on an aspect.
    """
    aspect_condition = "AND j.aspect_id = %s" if aspect_id is not None else ""
    aspect_params: list[Any] = [aspect_id] if aspect_id is not None else []
    if kind in ("humans", "ai_vs_ai"):
        condition = "an.kind = 'human'" if kind == "humans" else "an.kind = 'ai' AND j.trial = 1"
        counts = _choice_counts_sql(kind_condition=condition, aspect_condition=aspect_condition)
        spread = "(CASE WHEN c.n_a > 0 THEN 1 ELSE 0 END + CASE WHEN c.n_b > 0 THEN 1 ELSE 0 END" \
                 " + CASE WHEN c.n_tie > 0 THEN 1 ELSE 0 END)"  # fmt: skip
        return f"SELECT DISTINCT c.pair_id FROM ({counts}) c WHERE {spread} > 1", [
            campaign_id,
            *aspect_params,
        ]
    if kind == "ai_vs_humans":
        counts = _choice_counts_sql(kind_condition="an.kind = 'human'", aspect_condition=aspect_condition)
        sql = f"""
            SELECT DISTINCT j.pair_id
            FROM annotate_judgment j
            JOIN annotate_annotator an ON an.id = j.annotator_id
            JOIN (
                SELECT c.pair_id, c.aspect_id,
                       CASE WHEN c.n_a > c.n_b AND c.n_a > c.n_tie THEN 'A'
                            WHEN c.n_b > c.n_a AND c.n_b > c.n_tie THEN 'B'
                            WHEN c.n_tie > c.n_a AND c.n_tie > c.n_b THEN 'tie' END AS majority
                FROM ({counts}) c
            ) m ON m.pair_id = j.pair_id AND m.aspect_id = j.aspect_id
            WHERE an.kind = 'ai' AND j.trial = 1 AND j.rejected_at IS NULL
              AND m.majority IS NOT NULL AND j.choice <> m.majority
        """
        return sql, [campaign_id, *aspect_params]
    raise ValueError(f"Unknown disagreement {kind!r}; choose one of {', '.join(DISAGREEMENTS)}.")


def pair_browser(
    *,
    campaign: Campaign,
    aspect: Aspect | None = None,
    status: str = "",
    gold: str = "",
    disagreement: str = "",
    sort: str = "id",
    prompt_id: int | None = None,
) -> QuerySet[Any]:
    """A campaign's pairs under the browser's filters, sorted; ValueError names an unknown filter value."""
    from django.db.models.expressions import RawSQL

    from annotate.models import Pair

    pairs = Pair.objects.filter(campaign=campaign).select_related("prompt", "image_a", "image_b")
    overlap = campaign.humans_per_pair
    if prompt_id is not None:
        pairs = pairs.filter(prompt_id=prompt_id)
    # By submitted human judgment sets: none yet, some, or the campaign's overlap.
    if status == "unlabelled":
        pairs = pairs.filter(slots_submitted=0)
    elif status == "in_progress":
        pairs = pairs.filter(slots_submitted__gt=0, slots_submitted__lt=overlap)
    elif status == "complete":
        pairs = pairs.filter(slots_submitted__gte=overlap)
    elif status:
        raise ValueError(f"Unknown status {status!r}; choose one of {', '.join(PAIR_STATUSES)}.")
    if gold == "gold":
        pairs = pairs.filter(is_gold=True)
    elif gold == "regular":
        pairs = pairs.filter(is_gold=False)
    elif gold:
        raise ValueError("Gold must be 'gold' or 'regular'.")
    if aspect is not None and not disagreement:
        pairs = pairs.filter(judgments__aspect=aspect).distinct()
    if disagreement:
        sql, params = disagreement_sql(
            kind=disagreement, campaign_id=campaign.pk, aspect_id=aspect.pk if aspect else None
        )
        pairs = pairs.filter(pk__in=RawSQL(sql, params))
    if sort not in PAIR_SORTS:
        raise ValueError(f"Unknown sort {sort!r}; choose one of {', '.join(PAIR_SORTS)}.")
    return pairs.order_by(*PAIR_SORTS[sort][1])


def pair_judgment_counts(*, pair_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per pair: human and AI judgments (rejected ones counted apart), for one page of the browser."""
    from annotate.models import Judgment

    counts: dict[int, dict[str, int]] = {pk: {"human": 0, "ai": 0, "rejected": 0} for pk in pair_ids}
    kept = Q(rejected_at__isnull=True)
    rows = (
        Judgment.objects.filter(pair_id__in=pair_ids)
        .values("pair_id")
        .annotate(
            human=Count("id", filter=kept & Q(annotator__kind="human")),
            ai=Count("id", filter=kept & Q(annotator__kind="ai")),
            rejected=Count("id", filter=Q(rejected_at__isnull=False)),
        )
    )
    for row in rows:
        counts[row["pair_id"]] = {"human": row["human"], "ai": row["ai"], "rejected": row["rejected"]}
    return counts


def pair_judgments(*, pair: Any) -> list[dict[str, Any]]:
    """Every judgment on a pair grouped per annotator and trial, humans first, with the assignment's facts."""
    from annotate.models import Judgment

    judgments = (
        Judgment.objects.filter(pair=pair)
        .select_related("annotator", "annotator__user", "aspect", "assignment", "rejected_by")
        .order_by(
            "annotator__kind", "annotator__name", "annotator_id", "trial", "aspect__order", "aspect__key"
        )
    )
    groups: dict[tuple[int, int], dict[str, Any]] = {}
    for judgment in judgments:
        key = (judgment.annotator_id, judgment.trial)
        group = groups.setdefault(
            key,
            {
                "annotator": judgment.annotator,
                "trial": judgment.trial,
                "assignment": judgment.assignment,
                "presented_order": judgment.presented_order,
                "duration_s": judgment.duration_s,
                "judgments": [],
            },
        )
        group["judgments"].append(judgment)
    return list(groups.values())


def worker_history(*, annotator: Any, campaign: Campaign | None = None) -> dict[str, Any]:
    """A worker's enrolments with their counters, and their assignments newest first (a queryset to page)."""
    from annotate.models import Assignment, CampaignWorker

    links = CampaignWorker.objects.filter(annotator=annotator).select_related("campaign")
    assignments = Assignment.objects.filter(annotator=annotator).select_related("pair__prompt", "campaign")
    if campaign is not None:
        links = links.filter(campaign=campaign)
        assignments = assignments.filter(campaign=campaign)
    return {
        "links": list(links.order_by("-last_active_at")),
        "assignments": assignments.order_by("-created_at", "-id"),
    }


def judgments_by_assignment(*, assignment_ids: list[int]) -> dict[int, list[Any]]:
    """The judgments of these assignments (one page of a worker's history), in aspect order."""
    from annotate.models import Judgment

    found: dict[int, list[Any]] = {pk: [] for pk in assignment_ids}
    rows = Judgment.objects.filter(assignment_id__in=assignment_ids).select_related("aspect")
    for judgment in rows.order_by("aspect__order", "aspect__key"):
        assert judgment.assignment_id is not None
        found[judgment.assignment_id].append(judgment)
    return found


def campaigns_for_worker(*, user: Any) -> QuerySet[Campaign]:
    """Active campaigns a signed-in worker may label: every open one, and invite-only ones they are a member of."""
    member_of = Q(
        access=Campaign.Access.INVITE, workers__annotator__user=user, workers__invited_at__isnull=False
    )
    return (
        Campaign.objects.filter(status=Campaign.Status.ACTIVE)
        .filter(Q(access=Campaign.Access.OPEN) | member_of)
        .distinct()
        .order_by("name")
    )
