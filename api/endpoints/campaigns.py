"""Campaigns: list, create, read, update settings, change status; progress; prompts; pairs."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status

from annotate.models import Aspect, Campaign, Pair
from annotate.selectors import campaign_list_with_counts, campaign_progress, pair_judgments
from annotate.services.campaigns import campaign_save
from annotate.services.pairs import pairs_build
from api import schemas
from api.auth import admin_auth
from api.selectors import campaign_pairs, campaign_prompts
from pipeline.services.prompt_import import prompts_import

router = Router(auth=admin_auth, tags=["campaigns"])
SETTING_FIELDS = [f for f in schemas.CampaignSettings.model_fields if f != "aspects"]


def campaign_out(campaign: Campaign) -> dict[str, Any]:
    data = {f: getattr(campaign, f) for f in schemas.CampaignOut.model_fields if f != "aspects"}
    data["aspects"] = [a.key for a in campaign.aspects.all()]
    return data


def judgment_out(judgment: Any) -> dict[str, Any]:
    annotator = judgment.annotator
    name = annotator.user.get_username() if annotator.user else annotator.name
    return {
        "id": judgment.pk,
        "campaign": judgment.pair.campaign.slug,
        "pair": judgment.pair_id,
        "annotator": name,
        "annotator_kind": annotator.kind,
        "aspect": judgment.aspect.key,
        **{
            f: getattr(judgment, f)
            for f in ("choice", "score_a", "score_b", "rationale", "trial", "presented_order", "duration_s")
        },
        "created_at": judgment.created_at,
    }


def _campaign(slug: str) -> Campaign:
    return get_object_or_404(Campaign, slug=slug)


def _aspects(keys: list[str]) -> list[Aspect]:
    aspects = list(Aspect.objects.filter(key__in=keys))
    missing = set(keys) - {a.key for a in aspects}
    if missing:
        raise ValueError(f"Unknown aspects: {', '.join(sorted(missing))}")
    return aspects


def _limit(limit: int) -> int:
    return max(1, min(limit, settings.API_PAGE_MAX))


@router.get("/campaigns", response=list[schemas.CampaignOut])
def campaign_list(request: HttpRequest, status: str = "", limit: int = 100, offset: int = 0) -> Any:
    """Campaigns, newest first."""
    campaigns = campaign_list_with_counts().prefetch_related("aspects")
    if status:
        campaigns = campaigns.filter(status=status)
    return [campaign_out(c) for c in campaigns[max(0, offset) : max(0, offset) + _limit(limit)]]


@router.post("/campaigns", response={201: schemas.CampaignOut})
def campaign_create(request: HttpRequest, body: schemas.CampaignCreate) -> Any:
    """Create a campaign (a draft; every default aspect unless `aspects` names some)."""
    fields = body.model_dump(exclude_none=True, exclude={"aspects"})
    aspects = _aspects(body.aspects) if body.aspects else list(Aspect.objects.all())
    campaign = campaign_save(campaign=Campaign(**fields), aspects=aspects, created_by=request.user)
    return Status(201, campaign_out(campaign))


@router.get("/campaigns/{slug}", response=schemas.CampaignOut)
def campaign_read(request: HttpRequest, slug: str) -> Any:
    return campaign_out(_campaign(slug))


@router.patch("/campaigns/{slug}", response=schemas.CampaignOut)
def campaign_update(request: HttpRequest, slug: str, body: schemas.CampaignSettings) -> Any:
    """Change settings; fields left out keep their values."""
    campaign = _campaign(slug)
    for field, value in body.model_dump(exclude_none=True, exclude={"aspects"}).items():
        setattr(campaign, field, value)
    aspects = _aspects(body.aspects) if body.aspects else list(campaign.aspects.all())
    return campaign_out(campaign_save(campaign=campaign, aspects=aspects))


@router.post("/campaigns/{slug}/status", response=schemas.CampaignOut)
def campaign_status(request: HttpRequest, slug: str, body: schemas.CampaignStatusIn) -> Any:
    """Start (active), pause, close or reopen (draft) a campaign."""
    campaign = _campaign(slug)
    campaign.status = body.status
    return campaign_out(campaign_save(campaign=campaign, aspects=list(campaign.aspects.all())))


@router.get("/campaigns/{slug}/progress", response=schemas.ProgressOut)
def campaign_progress_read(request: HttpRequest, slug: str) -> Any:
    """Pairs complete / in progress / untouched, judgments in the last hour, active workers."""
    return campaign_progress(campaign=_campaign(slug))


@router.post("/campaigns/{slug}/prompts", response={201: schemas.PromptsBulkOut})
def prompts_bulk_create(request: HttpRequest, slug: str, body: schemas.PromptsBulkIn) -> Any:
    """Add prompts to a campaign, all or nothing (same checks and deduplication as a prompt file upload)."""
    campaign = _campaign(slug)
    data = "\n".join(json.dumps(p.model_dump(exclude_none=True)) for p in body.prompts).encode()
    result = prompts_import(data=data, format="jsonl", campaign=campaign, unsafe=body.unsafe, source="api")
    return Status(
        201,
        {
            "rows": result.rows,
            "created": result.created,
            "existing": result.existing,
            "duplicates_in_request": result.duplicates_in_file,
            "flagged_unsafe": result.flagged_unsafe,
            "skipped_unsafe": result.skipped_unsafe,
            "prompt_ids": result.prompt_ids,
        },
    )


@router.get("/campaigns/{slug}/prompts", response=list[schemas.PromptOut])
def prompts_list(
    request: HttpRequest,
    slug: str,
    search: str = "",
    unsafe: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Any:
    prompts = campaign_prompts(campaign=_campaign(slug), search=search, unsafe=unsafe)
    return prompts[max(0, offset) : max(0, offset) + _limit(limit)]


@router.post("/campaigns/{slug}/pairs/build", response={201: schemas.PairBuildOut})
def pairs_build_run(request: HttpRequest, slug: str, body: schemas.PairBuildIn) -> Any:
    """Pair the images of every prompt of the campaign (re-running adds only new pairs)."""
    campaign = _campaign(slug)
    created = pairs_build(
        campaign=campaign, strategy=body.strategy, sample_per_prompt=body.sample_per_prompt, seed=body.seed
    )
    return Status(201, {"created": created, "total": campaign.pairs.count()})


class PairFilter(schemas.Schema):
    gold: bool | None = None
    after_id: int = 0
    limit: int = 100


@router.get("/campaigns/{slug}/pairs", response=list[schemas.PairOut])
def pairs_list(request: HttpRequest, slug: str, filters: Query[PairFilter]) -> Any:
    """Pairs by id; pass the last id seen as after_id for the next page."""
    pairs = campaign_pairs(campaign=_campaign(slug), gold=filters.gold, after_id=filters.after_id)
    return [_pair_out(p) for p in pairs[: _limit(filters.limit)]]


def _pair_out(pair: Pair) -> dict[str, Any]:
    return {
        "id": pair.pk,
        "prompt_id": pair.prompt_id,
        "image_a": pair.image_a_id,
        "image_b": pair.image_b_id,
        "is_gold": pair.is_gold,
        "slots_taken": pair.slots_taken,
        "slots_submitted": pair.slots_submitted,
    }


@router.get("/pairs/{pair_id}", response=schemas.PairDetailOut)
def pair_read(request: HttpRequest, pair_id: int) -> Any:
    """A pair with every judgment on it."""
    pair = get_object_or_404(Pair.objects.select_related("prompt", "campaign"), pk=pair_id)
    judgments = [judgment_out(j) for group in pair_judgments(pair=pair) for j in group["judgments"]]
    return {**_pair_out(pair), "prompt": pair.prompt.text, "judgments": judgments}
