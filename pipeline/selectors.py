"""Reads for pipeline's pages: AI judges with their spending, a job's calls in totals and by failure."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from core.models import Job
from pipeline.jobs import ANNOTATE
from pipeline.models import AICall, AIJudgeConfig


def judges_with_spending() -> list[AIJudgeConfig]:
    """Every AI judge configuration with its calls, failures, tokens and dollars spent (annotated)."""
    return list(
        AIJudgeConfig.objects.annotate(
            n_calls=Count("calls"),
            n_failed=Count("calls", filter=Q(calls__status=AICall.Status.FAILED)),
            prompt_tokens=Sum("calls__prompt_tokens"),
            completion_tokens=Sum("calls__completion_tokens"),
            spent=Sum("calls__cost_usd"),
        ).order_by("name")
    )


def annotation_jobs_recent(*, limit: int = 20) -> list[Job]:
    """The newest AI annotation jobs, with their campaigns."""
    return list(Job.objects.filter(kind=ANNOTATE).select_related("campaign")[:limit])


def job_call_totals(*, job: Job) -> dict[str, Any]:
    """A job's calls counted by status, with tokens and cost summed."""
    return AICall.objects.filter(job=job).aggregate(
        n=Count("pk"),
        succeeded=Count("pk", filter=Q(status=AICall.Status.SUCCEEDED)),
        failed=Count("pk", filter=Q(status=AICall.Status.FAILED)),
        pending=Count("pk", filter=Q(status=AICall.Status.PENDING)),
        prompt_tokens=Sum("prompt_tokens"),
        completion_tokens=Sum("completion_tokens"),
        cost=Sum("cost_usd"),
    )


def job_failure_reasons(*, job: Job) -> list[dict[str, Any]]:
    """A job's failed calls counted by reason, the commonest first."""
    rows = (
        AICall.objects.filter(job=job, status=AICall.Status.FAILED)
        .values("error_reason")
        .annotate(n=Count("pk"))
        .order_by("-n")
    )
    return [dict(row) for row in rows]


def job_calls_page_rows(*, job: Job, status: str) -> QuerySet[AICall]:
    """A job's calls of one status ("all" for every call), in id order, without the long prompt text."""
    calls = AICall.objects.filter(job=job)
    shown = calls if status == "all" else calls.filter(status=status)
    return shown.select_related("pair", "prompt").defer("rendered_prompt").order_by("pk")
