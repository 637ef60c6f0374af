"""Jobs pages: a list with live progress bars, a detail page with the log, cancel and retry."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.http import HtmxHttpRequest
from core.jobs import job_cancel, job_retry
from core.models import Job
from core.permissions import admin_required

JOB_PAGE_SIZE = 50


@admin_required
def job_list(request: HtmxHttpRequest) -> HttpResponse:
    """All jobs, newest first; the table polls itself while any job is unfinished."""
    jobs = list(Job.objects.select_related("campaign", "created_by")[:JOB_PAGE_SIZE])
    polling = any(not job.is_finished for job in jobs)
    template = "core/job_list.html#job-table" if request.htmx else "core/job_list.html"
    return render(request, template, {"jobs": jobs, "polling": polling})


@admin_required
def job_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """One job: parameters, progress, result, error and log; polls while running."""
    job = get_object_or_404(Job.objects.select_related("campaign", "created_by"), pk=pk)
    template = "core/job_detail.html#job-status" if request.htmx else "core/job_detail.html"
    return render(request, template, {"job": job})


@admin_required
@require_POST
def job_cancel_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Ask a job to stop between units of work."""
    job = job_cancel(job=get_object_or_404(Job, pk=pk))
    if request.htmx:
        return render(request, "core/job_list.html#job-row", {"job": job})
    messages.info(request, f"Cancellation requested for job {job.pk}.")
    return redirect("core:job-detail", pk=job.pk)


@admin_required
@require_POST
def job_retry_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Resume a failed or cancelled job where it stopped."""
    job = get_object_or_404(Job, pk=pk)
    try:
        job = job_retry(job=job, by=request.user)
    except ValueError as exc:
        if request.htmx:
            return HttpResponse(str(exc), status=409)
        messages.error(request, str(exc))
    else:
        if request.htmx:
            return render(request, "core/job_list.html#job-row", {"job": job})
        messages.success(request, f"Job {job.pk} is queued again; it resumes where it stopped.")
    return redirect("core:job-detail", pk=job.pk)
