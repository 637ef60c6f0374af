"""Agreement reports: the cached report JSON for given filters, or the job that computes it."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Status

from annotate.models import Campaign
from api import schemas
from api.auth import admin_auth
from api.errors import error_response
from api.schemas import Schema
from api.selectors import report_cached
from scoring.report_params import ReportParameters
from scoring.services.reports import report_job_running, report_job_start

router = Router(auth=admin_auth, tags=["reports"])


class ReportFilter(Schema):
    aspect: list[str] | None = None
    include_flagged: bool = False
    include_blocked: bool = False
    exclude_simulated: bool = False
    n_resamples: int = Field(1000, ge=0, le=10000)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    level: float = Field(0.95, gt=0.5, lt=1)
    majority_rule: Literal["strict", "tie"] = "strict"


def _params(campaign: Campaign, filters: ReportFilter) -> ReportParameters:
    return ReportParameters(
        campaign_ids=(campaign.pk,),
        aspect_keys=tuple(filters.aspect) if filters.aspect else None,
        include_flagged=filters.include_flagged,
        include_blocked=filters.include_blocked,
        exclude_simulated=filters.exclude_simulated,
        n_resamples=filters.n_resamples,
        seed=filters.seed,
        level=filters.level,
        majority_rule=filters.majority_rule,
    )


@router.get(
    "/campaigns/{slug}/report",
    response={200: dict[str, Any], 202: schemas.ReportPending, 404: schemas.Error},
)
def report_read(request: HttpRequest, slug: str, filters: Query[ReportFilter]) -> Any:
    """The cached report (schema: docs/report-schema.md); 202 with the job while one computes it; 404 if none.

    A GET never starts a job: POST to the same URL does.
    """
    campaign = get_object_or_404(Campaign, slug=slug)
    params = _params(campaign, filters)
    cached = report_cached(campaign=campaign, params=params)
    if cached is not None:
        return Status(200, cached.data)
    running = report_job_running(campaign=campaign, params=params)
    if running is not None:
        return Status(202, {"status": running.status, "job_id": running.pk})
    return error_response(404, "No report is cached for these parameters: POST to this URL to compute one.")


@router.post("/campaigns/{slug}/report", response={202: schemas.ReportPending})
def report_refresh(request: HttpRequest, slug: str, filters: Query[ReportFilter]) -> Any:
    """Start (or join) the job computing this report; poll /jobs/{job_id}, then GET the report."""
    campaign = get_object_or_404(Campaign, slug=slug)
    job = report_job_start(campaign=campaign, params=_params(campaign, filters), user=request.user)
    return Status(202, {"status": job.status, "job_id": job.pk})
