"""Reads the API lists need that the pages have no selector for: filtered, id-ordered, bounded querysets."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from annotate.models import Campaign, Image, Judgment, Pair, Prompt


def campaign_prompts(*, campaign: Campaign, search: str = "", unsafe: bool | None = None) -> QuerySet[Prompt]:
    """The campaign's prompts by id, optionally containing `search` or with the given unsafe flag."""
    prompts = campaign.prompts.all().order_by("id")
    if search:
        prompts = prompts.filter(text__icontains=search)
    if unsafe is not None:
        prompts = prompts.filter(is_unsafe=unsafe)
    return prompts


def images_list(
    *, prompt_id: int | None = None, generator: str = "", campaign: Campaign | None = None
) -> QuerySet[Image]:
    """Images by id, filtered by prompt, generator name or campaign."""
    images = Image.objects.select_related("generator").order_by("id")
    if prompt_id is not None:
        images = images.filter(prompt_id=prompt_id)
    if generator:
        images = images.filter(generator__name=generator)
    if campaign is not None:
        images = images.filter(prompt__campaigns=campaign)
    return images


def campaign_pairs(*, campaign: Campaign, gold: bool | None = None, after_id: int = 0) -> QuerySet[Pair]:
    """The campaign's pairs by id, after `after_id`."""
    pairs = campaign.pairs.filter(id__gt=after_id).order_by("id")
    if gold is not None:
        pairs = pairs.filter(is_gold=gold)
    return pairs


def judgments_pull(
    *,
    campaign: Campaign | None = None,
    aspect: str = "",
    annotator_kind: str = "",
    since_id: int = 0,
    include_rejected: bool = False,
) -> QuerySet[Judgment]:
    """Judgments with an id above `since_id`, by id: an incremental pull resumes from the last id it saw."""
    judgments = (
        Judgment.objects.filter(id__gt=since_id)
        .select_related("pair__campaign", "annotator__user", "aspect")
        .order_by("id")
    )
    if campaign is not None:
        judgments = judgments.filter(pair__campaign=campaign)
    if aspect:
        judgments = judgments.filter(aspect__key=aspect)
    if annotator_kind:
        judgments = judgments.filter(annotator__kind=annotator_kind)
    if not include_rejected:
        judgments = judgments.filter(rejected_at__isnull=True)
    return judgments


def report_cached(*, campaign: Campaign, params: Any) -> Any:
    """The newest cached report of the current schema for these parameters (as the report page reads it)."""
    from scoring.models import Report
    from scoring.services.reports import REPORT_SCHEMA_VERSION

    return (
        Report.objects.filter(campaign=campaign, params_hash=params.key, schema_version=REPORT_SCHEMA_VERSION)
        .order_by("-created_at", "-id")
        .first()
    )
