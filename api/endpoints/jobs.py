"""Jobs: the registered kinds with their parameters' JSON schema, launch any kind, read, cancel; AI estimates.

Launching is generic over core.registry: the body's params are validated by the kind's params dataclass,
so a kind registered by any app (train, score, dataset import/export...) is launchable with no API change.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from annotate.models import Campaign
from api import schemas
from api.auth import admin_auth
from core.jobs import job_cancel, job_create
from core.models import Job
from core.registry import job_kind, job_kinds
from pipeline.models import AIJudgeConfig
from pipeline.services.annotation import annotation_estimate

router = Router(auth=admin_auth, tags=["jobs"])


def job_out(job: Job) -> dict[str, Any]:
    return {
        **{f: getattr(job, f) for f in schemas.JobOut.model_fields if f not in {"campaign", "cost_usd"}},
        "campaign": job.campaign.slug if job.campaign is not None else None,
        "cost_usd": float(job.cost_usd),
    }


@router.get("/jobs/kinds", response=list[schemas.JobKindOut])
def job_kind_list(request: HttpRequest) -> Any:
    """Every job kind this installation can run, with the JSON schema of its parameters."""
    from pydantic import TypeAdapter

    return [
        {
            "name": k.name,
            "label": k.label,
            "queue": k.queue,
            "params_schema": TypeAdapter(k.params).json_schema(),
        }
        for k in sorted(job_kinds().values(), key=lambda k: k.name)
    ]


@router.post("/jobs", response={201: schemas.JobOut})
def job_launch(request: HttpRequest, body: schemas.JobLaunchIn) -> Any:
    """Start a job of any registered kind; `params` must match the kind's parameters (see /jobs/kinds)."""
    spec = job_kind(body.kind)
    params = spec.params.from_json(body.params)
    campaign = get_object_or_404(Campaign, slug=body.campaign) if body.campaign else None
    job = job_create(
        kind=spec.name, params=params, title=body.title, campaign=campaign, created_by=request.user
    )
    return Status(201, job_out(job))


@router.get("/jobs/{job_id}", response=schemas.JobOut)
def job_read(request: HttpRequest, job_id: int) -> Any:
    """A job's status, progress, result or error."""
    return job_out(get_object_or_404(Job.objects.select_related("campaign"), pk=job_id))


@router.post("/jobs/{job_id}/cancel", response=schemas.JobOut)
def job_cancel_request(request: HttpRequest, job_id: int) -> Any:
    """Ask a job to stop (one not started yet stops at once)."""
    return job_out(job_cancel(job=get_object_or_404(Job, pk=job_id)))


@router.get("/campaigns/{slug}/estimate", response=schemas.EstimateOut)
def ai_estimate(
    request: HttpRequest, slug: str, judge_config_id: int, selection: str = "all", sample_n: int | None = None
) -> Any:
    """Calls, tokens and cost of annotating the campaign with an AI judge, before launching the job."""
    campaign = get_object_or_404(Campaign, slug=slug)
    config = get_object_or_404(AIJudgeConfig, pk=judge_config_id)
    estimate = annotation_estimate(
        campaign=campaign, judge_config=config, selection=selection, sample_n=sample_n
    )
    return {**estimate.__dict__, "cost_usd": float(estimate.cost_usd)}
