"""The job system, run by a real Celery worker on the real Redis broker."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from core.jobs import DemoParams, job_cancel, job_create, job_run
from core.models import Job
from core.registry import JobParamsError
from tests.helpers import fresh, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def observe_from_another_connection(job_id: int, seen: list[tuple[str, int]], stop: threading.Event) -> None:
    # A separate thread has its own database connection, like the web process polling the row.
    try:
        while not stop.is_set():
            job = Job.objects.get(pk=job_id)
            seen.append((job.status, job.progress_done))
            if job.is_finished:
                return
            time.sleep(0.02)
    finally:
        connections.close_all()


def test_progress_is_visible_from_another_connection_while_the_job_runs(worker):
    job = job_create(kind="demo", params=DemoParams(steps=10, sleep_s=0.1))
    seen: list[tuple[str, int]] = []
    stop = threading.Event()
    observer = threading.Thread(target=observe_from_another_connection, args=(job.pk, seen, stop))
    observer.start()
    wait_for(lambda: fresh(job.pk).is_finished)
    stop.set()
    observer.join(5)
    running_progress = {done for status, done in seen if status == Job.Status.RUNNING}
    assert len(running_progress) >= 3, seen  # the bar moved while it ran, seen from outside
    done = fresh(job.pk)
    assert done.status == Job.Status.SUCCEEDED
    assert (done.progress_done, done.progress_total) == (10, 10)
    assert done.result == {"steps": 10}
    assert done.started_at and done.finished_at and done.attempts == 1


def test_cancellation_is_honoured_between_units_of_work(worker):
    job = job_create(kind="demo", params=DemoParams(steps=200, sleep_s=0.05))
    wait_for(lambda: fresh(job.pk).progress_done >= 3)
    job_cancel(job=fresh(job.pk))
    finished = wait_for(lambda: (j := fresh(job.pk)).is_finished and j)
    assert finished.status == Job.Status.CANCELLED
    assert 3 <= finished.progress_done < 200
    assert "cancelled by request" in finished.log


def test_a_failing_job_records_its_error(worker):
    job = job_create(kind="demo", params=DemoParams(steps=5, sleep_s=0.01, fail_at=2))
    failed = wait_for(lambda: (j := fresh(job.pk)).is_finished and j)
    assert failed.status == Job.Status.FAILED
    assert failed.error == "RuntimeError: demo job asked to fail at step 2"
    assert "Traceback" in failed.log
    assert failed.progress_done == 2


def test_a_pending_job_cancelled_before_it_starts_never_runs(worker):
    job = Job.objects.create(kind="demo", params={"steps": 3, "sleep_s": 0})
    job_cancel(job=job)
    assert fresh(job.pk).status == Job.Status.CANCELLED
    assert job_run(job_id=job.pk) == Job.Status.CANCELLED
    assert fresh(job.pk).progress_done == 0


def test_a_finished_job_is_not_run_again_when_its_message_is_redelivered():
    job = Job.objects.create(kind="demo", params={"steps": 2, "sleep_s": 0})
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    Job.objects.filter(pk=job.pk).update(progress_done=0)
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    assert fresh(job.pk).progress_done == 0 and fresh(job.pk).attempts == 1
    assert job_run(job_id=987654) == "missing"


def test_unknown_job_kind_is_refused():
    with pytest.raises(ValueError, match="Unknown job kind"):
        job_create(kind="nonsense", params=DemoParams())


def test_parameters_are_typed_per_kind():
    # A kind takes its own parameters class; stored JSON is validated field by field when read back.
    with pytest.raises(TypeError, match="takes DemoParams"):
        job_create(kind="demo", params={"steps": 3})  # type: ignore[arg-type]
    with pytest.raises(JobParamsError, match="steps"):
        DemoParams.from_json({"steps": "many"})
    with pytest.raises(JobParamsError, match="colour"):
        DemoParams.from_json({"steps": 3, "colour": "red"})
    assert DemoParams.from_json(DemoParams(steps=3, fail_at=1).to_json()) == DemoParams(steps=3, fail_at=1)


def test_a_job_whose_stored_parameters_are_invalid_fails_with_the_field_named():
    job = Job.objects.create(kind="demo", params={"steps": "many"})
    assert job_run(job_id=job.pk) == Job.Status.FAILED
    assert "steps" in fresh(job.pk).error
