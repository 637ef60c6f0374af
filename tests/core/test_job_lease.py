"""A lease per running job, the sweeper and the outbox (issue 17, findings 1-3), in one process.

Runs happen in threads with their own database connections, as two workers would; the broker is the test
Redis (or a closed port, for a broker that is down). Real worker processes, a real broker restart and
SIGKILL are in test_job_recovery.py.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from config.celery_app import app as celery_app
from core.jobs import (
    LEASE_LOST,
    LEASED,
    DemoParams,
    JobContext,
    JobLeaseLost,
    job_cancel,
    job_create,
    job_run,
    jobs_sweep,
)
from core.models import Job
from core.registry import JobKind, JobParams, job_kind_register
from tests.helpers import fresh, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True)
class GateParams(JobParams):
    """The gate job's handler waits for the test to open a gate (the first run) or returns at once."""

    name: str = "gate"


GATES: dict[str, threading.Event] = {}
RUNS: list[str] = []


def gate_handler(ctx: JobContext) -> dict[str, Any]:
    """The first run of a job waits until its gate opens; later runs return at once."""
    RUNS.append(ctx.owner or "")
    if len(RUNS) == 1:
        GATES["first"].wait(20)
    return {"run": len(RUNS)}


job_kind_register(
    JobKind(name="test_gate", label="Gate (tests)", handler=f"{__name__}.gate_handler", params=GateParams)
)


@pytest.fixture
def gate():
    RUNS.clear()
    GATES["first"] = threading.Event()
    yield GATES["first"]
    GATES["first"].set()


@pytest.fixture
def short_lease(settings):
    settings.JOB_LEASE_TIMEOUT_S = 0.6
    settings.JOB_HEARTBEAT_INTERVAL_S = 0.1
    return settings


def run_in_thread(job_id: int, out: list[str]) -> threading.Thread:
    """job_run in a thread of its own (its own database connection), like a second worker."""

    def target() -> None:
        try:
            out.append(job_run(job_id=job_id, task_id="thread"))
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def make_stale(job: Job, owner: str = "dead-host:1/abc") -> Job:
    """A running job whose run stopped heartbeating ten minutes ago (its worker was killed)."""
    long_ago = timezone.now() - timedelta(minutes=10)
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, lease_owner=owner, heartbeat_at=long_ago, started_at=long_ago, attempts=1
    )
    return fresh(job.pk)


def test_a_message_for_a_job_with_a_live_lease_returns_at_once(short_lease):
    """Finding 2: a redelivered or duplicate message used to start a second run of a running job."""
    job = Job.objects.create(kind="demo", params=DemoParams(steps=20, sleep_s=0.05).to_json())
    out: list[str] = []
    first = run_in_thread(job.pk, out)
    wait_for(lambda: fresh(job.pk).progress_done >= 2)
    assert job_run(job_id=job.pk, task_id="duplicate") == LEASED
    assert first.is_alive() and not fresh(job.pk).is_finished  # it returned while the first run still ran
    first.join(10)
    done = fresh(job.pk)
    assert out == [Job.Status.SUCCEEDED] and done.status == Job.Status.SUCCEEDED
    assert done.attempts == 1 and done.progress_done == 20
    assert done.lease_owner == ""  # released when it finished


def test_the_heartbeat_renews_the_lease_while_the_job_runs(short_lease):
    job = Job.objects.create(kind="demo", params=DemoParams(steps=12, sleep_s=0.05).to_json())
    out: list[str] = []
    thread = run_in_thread(job.pk, out)
    beats = set()
    while thread.is_alive():
        row = fresh(job.pk)
        if row.status == Job.Status.RUNNING and row.heartbeat_at:
            beats.add(row.heartbeat_at)
            assert not row.lease_is_stale
        time.sleep(0.03)
    assert len(beats) >= 3, beats  # 0.6 s of work, a beat every 0.1 s
    assert out == [Job.Status.SUCCEEDED]


def test_a_stale_lease_is_taken_over_and_the_old_run_never_rewrites_the_finished_row(
    short_lease, gate, monkeypatch
):
    """Finding 2: the job row was rewritten after it was marked finished."""
    job = Job.objects.create(kind="test_gate", params={})
    # The first run's heartbeat is stuck (a frozen process, a partition): its lease goes stale.
    monkeypatch.setattr("core.jobs._Heartbeat.run", lambda self: None)
    out: list[str] = []
    first = run_in_thread(job.pk, out)
    wait_for(lambda: len(RUNS) == 1)
    wait_for(lambda: fresh(job.pk).lease_is_stale, timeout=5)
    monkeypatch.undo()

    assert job_run(job_id=job.pk, task_id="second") == Job.Status.SUCCEEDED
    finished = fresh(job.pk)
    assert finished.result == {"run": 2} and finished.attempts == 2
    assert "took over from" in finished.log and RUNS[0] in finished.log

    gate.set()  # the first run now comes back and tries to record its outcome
    first.join(10)
    assert out == [LEASE_LOST]
    after = fresh(job.pk)
    for field in ("status", "result", "finished_at", "log", "attempts", "progress_done", "lease_owner"):
        assert getattr(after, field) == getattr(finished, field), field


def test_a_run_that_lost_its_lease_writes_nothing_and_stops():
    job = Job.objects.create(kind="demo", params={}, status=Job.Status.RUNNING, lease_owner="new-owner")
    ctx = JobContext(job, owner="old-owner")
    ctx.advance()
    ctx.log("should not appear")
    row = fresh(job.pk)
    assert row.log == "" and row.progress_done == 0
    assert ctx.should_stop()
    with pytest.raises(JobLeaseLost):
        ctx.check_cancelled()


def test_cancelling_a_job_whose_worker_died_cancels_it_at_once():
    """Finding 1: a job whose worker was killed showed "Running" and ignored cancel."""
    job = make_stale(Job.objects.create(kind="demo", params={}))
    cancelled = job_cancel(job=job)
    assert cancelled.status == Job.Status.CANCELLED and cancelled.finished_at is not None
    assert "stopped heartbeating" in fresh(job.pk).log
    assert job_run(job_id=job.pk) == Job.Status.CANCELLED  # a late message changes nothing


def test_cancelling_a_live_job_only_asks_it_to_stop(short_lease):
    job = Job.objects.create(
        kind="demo", params={}, status=Job.Status.RUNNING, lease_owner="x", heartbeat_at=timezone.now()
    )
    cancelled = job_cancel(job=job)
    assert cancelled.status == Job.Status.RUNNING and cancelled.cancel_requested


@pytest.mark.slow
def test_the_sweeper_requeues_a_stale_job_and_a_worker_resumes_it(worker):
    job = make_stale(Job.objects.create(kind="demo", params=DemoParams(steps=3, sleep_s=0.01).to_json()))
    report = jobs_sweep()
    assert report.requeued == 1 and report.sent == 1
    done = wait_for(lambda: (j := fresh(job.pk)).is_finished and j)
    assert done.status == Job.Status.SUCCEEDED and done.attempts == 2
    assert "stopped heartbeating; queued again" in done.log and "resuming" in done.log


def test_the_sweeper_cancels_a_stale_job_asked_to_stop():
    job = make_stale(Job.objects.create(kind="demo", params={}))
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    assert jobs_sweep().cancelled == 1
    assert fresh(job.pk).status == Job.Status.CANCELLED


def test_the_sweeper_leaves_live_jobs_and_just_created_ones_alone(short_lease):
    live = Job.objects.create(
        kind="demo", params={}, status=Job.Status.RUNNING, lease_owner="x", heartbeat_at=timezone.now()
    )
    new = Job.objects.create(kind="demo", params={})  # its own on_commit send may still be under way
    assert jobs_sweep().to_json() == {"requeued": 0, "cancelled": 0, "sent": 0, "unsent": 0}
    assert fresh(live.pk).status == Job.Status.RUNNING and fresh(new.pk).sent_at is None


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def broker_down():
    """The Celery app publishes to a port where nothing listens (a Redis that is down)."""
    saved = celery_app.conf.broker_url, celery_app.conf.broker_write_url
    celery_app.conf.broker_url = f"redis://127.0.0.1:{closed_port()}/0"
    celery_app.conf.broker_write_url = None
    yield
    celery_app.conf.broker_url, celery_app.conf.broker_write_url = saved


def test_launching_while_the_broker_is_down_answers_at_once_and_keeps_the_job(
    broker_down, admin_client, aspects
):
    """Finding 3: the admin got an HTTP 500 after ~20 s and the job stayed pending forever."""
    from tests.factories import CampaignFactory

    campaign = CampaignFactory()
    started = time.monotonic()
    response = admin_client.post(reverse("scoring:report-refresh", args=[campaign.slug]))  # launches a job
    elapsed = time.monotonic() - started
    assert response.status_code == 302 and elapsed < 15, elapsed  # it used to hang ~20 s
    job = Job.objects.get()
    assert job.status == Job.Status.PENDING and job.is_queued_not_sent
    assert "connect" in job.send_error.lower()
    page = admin_client.get(reverse("core:job-list")).content.decode()
    assert "not sent" in page
    detail = admin_client.get(reverse("core:job-detail", args=[job.pk])).content.decode()
    assert "not sent" in detail and job.send_error[:40] in detail
    # While the broker stays down the sweeper leaves it in the outbox, quickly.
    started = time.monotonic()
    assert jobs_sweep().unsent == 1 and time.monotonic() - started < 15


@pytest.mark.slow
def test_the_sweeper_sends_the_outbox_when_the_broker_is_back(worker):
    job = Job.objects.create(
        kind="demo", params=DemoParams(steps=2, sleep_s=0.01).to_json(), send_error="ConnectionError: down"
    )
    assert jobs_sweep().sent == 1
    assert fresh(job.pk).sent_at is not None and fresh(job.pk).send_error == ""
    done = wait_for(lambda: (j := fresh(job.pk)).is_finished and j)
    assert done.status == Job.Status.SUCCEEDED and done.attempts == 1


def test_a_job_created_with_the_broker_up_is_marked_sent():
    job = job_create(kind="demo", params=DemoParams(steps=1, sleep_s=0))
    row = fresh(job.pk)
    assert row.sent_at is not None and row.send_error == "" and not row.is_queued_not_sent
