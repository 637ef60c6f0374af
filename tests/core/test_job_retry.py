"""Retrying a failed or cancelled job resumes it; the jobs pages show why a job failed and ask before cancelling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import reverse

from core.jobs import JobContext, job_create, job_retry
from core.models import Job
from core.registry import JobKind, JobParams, job_kind_register
from tests.factories import AdminFactory, JobFactory
from tests.helpers import fresh, wait_for

FLAKY = "test-flaky"


@dataclass(frozen=True)
class FlakyParams(JobParams):
    """Count `steps` units; the first run fails at `fail_at` (state keeps what was done)."""

    steps: int = 6
    fail_at: int = 3


def flaky_count(ctx: JobContext) -> dict[str, Any]:
    """A resumable handler: units done are saved in the state, so a resumed run starts after them."""
    params: FlakyParams = ctx.params
    done = int(ctx.state.get("done", 0))
    runs = [*ctx.state.get("runs", []), done]
    ctx.save_state(runs=runs)
    ctx.set_progress(done, total=params.steps)
    for unit in range(done, params.steps):
        if unit == params.fail_at and len(runs) == 1:
            raise RuntimeError(f"the network went away at unit {unit}\nsecond line of detail")
        ctx.save_state(done=unit + 1)
        ctx.advance()
    return {"runs_started_at": runs}


job_kind_register(
    JobKind(name=FLAKY, label="Flaky test job", handler=f"{__name__}.flaky_count", params=FlakyParams)
)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_failed_job_resumes_where_it_stopped_on_the_real_worker(worker):
    job = job_create(kind=FLAKY, params=FlakyParams())
    failed = wait_for(lambda: (j := fresh(job.pk)).is_finished and j)
    assert failed.status == Job.Status.FAILED and "network went away at unit 3" in failed.error
    assert failed.state["done"] == 3
    job_retry(job=failed)
    done = wait_for(lambda: (j := fresh(job.pk)).is_finished and j)
    assert done.status == Job.Status.SUCCEEDED, done.error
    assert done.result == {"runs_started_at": [0, 3]}  # the second run skipped the three units done
    assert done.attempts == 2 and done.error == "" and "retry requested after: RuntimeError" in done.log


@pytest.mark.django_db
def test_only_failed_or_cancelled_jobs_can_be_retried():
    for status in (Job.Status.SUCCEEDED, Job.Status.RUNNING, Job.Status.PENDING):
        with pytest.raises(ValueError, match="only failed or cancelled jobs resume"):
            job_retry(job=JobFactory(status=status))
    cancelled = JobFactory(status=Job.Status.CANCELLED, cancel_requested=True)
    retried = job_retry(job=cancelled)
    assert (retried.status, retried.cancel_requested, retried.finished_at) == (
        Job.Status.PENDING,
        False,
        None,
    )


@pytest.mark.django_db
def test_the_pages_show_the_reason_offer_retry_and_confirm_cancel(client):
    client.force_login(AdminFactory())
    failed = JobFactory(status=Job.Status.FAILED, error="ValueError: no prompts in the campaign\nTraceback …")
    running = JobFactory(status=Job.Status.RUNNING)
    listing = client.get(reverse("core:job-list")).content.decode()
    assert "Start a demo job" not in listing and "jobs/demo" not in listing
    assert "ValueError: no prompts in the campaign" in listing
    assert reverse("core:job-retry", args=[failed.pk]) in listing
    assert "hx-confirm=" in listing and reverse("core:job-cancel", args=[running.pk]) in listing
    detail = client.get(reverse("core:job-detail", args=[failed.pk])).content.decode()
    assert "Why it failed:</b> ValueError: no prompts in the campaign" in detail and "Error details" in detail
    running_page = client.get(reverse("core:job-detail", args=[running.pk])).content.decode()
    assert "data-confirm=" in running_page
    response = client.post(reverse("core:job-retry", args=[failed.pk]))
    assert response.status_code == 302 and fresh(failed.pk).status == Job.Status.PENDING
    again = client.post(reverse("core:job-retry", args=[failed.pk]), HTTP_HX_REQUEST="true")
    assert again.status_code == 409
