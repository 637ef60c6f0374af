"""The job system, run by a real Celery worker on the real Redis broker."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from annotate.models import Image, Pair
from annotate.services.campaigns import DEMO_GENERATOR, demo_campaign_seed
from pipeline.jobs import job_cancel, job_create, job_run
from pipeline.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def fresh(job_id: int) -> Job:
    return Job.objects.get(pk=job_id)


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
    job = job_create(kind=Job.Kind.DEMO, params={"steps": 10, "sleep_s": 0.1})
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
    job = job_create(kind=Job.Kind.DEMO, params={"steps": 200, "sleep_s": 0.05})
    wait_for(lambda: fresh(job.pk).progress_done >= 3)
    job_cancel(job=fresh(job.pk))
    finished = wait_for(lambda: (j := fresh(job.pk)).is_finished and j)
    assert finished.status == Job.Status.CANCELLED
    assert 3 <= finished.progress_done < 200
    assert "cancelled by request" in finished.log


def test_a_failing_job_records_its_error(worker):
    job = job_create(kind=Job.Kind.DEMO, params={"steps": 5, "sleep_s": 0.01, "fail_at": 2})
    failed = wait_for(lambda: (j := fresh(job.pk)).is_finished and j)
    assert failed.status == Job.Status.FAILED
    assert failed.error == "RuntimeError: demo job asked to fail at step 2"
    assert "Traceback" in failed.log
    assert failed.progress_done == 2


def test_a_pending_job_cancelled_before_it_starts_never_runs(worker):
    job = Job.objects.create(kind=Job.Kind.DEMO, params={"steps": 3, "sleep_s": 0})
    job_cancel(job=job)
    assert fresh(job.pk).status == Job.Status.CANCELLED
    assert job_run(job_id=job.pk) == Job.Status.CANCELLED
    assert fresh(job.pk).progress_done == 0


def test_a_finished_job_is_not_run_again_when_its_message_is_redelivered():
    job = Job.objects.create(kind=Job.Kind.DEMO, params={"steps": 2, "sleep_s": 0})
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    Job.objects.filter(pk=job.pk).update(progress_done=0)
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    assert fresh(job.pk).progress_done == 0 and fresh(job.pk).attempts == 1
    assert job_run(job_id=987654) == "missing"


def test_unknown_job_kind_is_refused():
    with pytest.raises(ValueError, match="Unknown job kind"):
        job_create(kind="nonsense")


def test_demo_generation_job_renders_images_builds_pairs_and_is_idempotent(worker, aspects):
    campaign = demo_campaign_seed(n_prompts=3)
    from annotate.models import Generator

    generator = Generator.objects.get(name=DEMO_GENERATOR)
    params = {"campaign_id": campaign.pk, "generator_ids": [generator.pk], "images_per_prompt": 3, "seed": 4}
    first = job_create(kind=Job.Kind.GENERATE, campaign=campaign, queue="default", params=params)
    done = wait_for(lambda: (j := fresh(first.pk)).is_finished and j, timeout=60)
    assert done.status == Job.Status.SUCCEEDED, done.error
    counted = ("images_created", "images_skipped", "pairs_created")  # the result may carry more fields
    assert {k: done.result[k] for k in counted} == {
        "images_created": 9,
        "images_skipped": 0,
        "pairs_created": 9,
    }
    assert Image.objects.count() == 9 and Pair.objects.filter(campaign=campaign).count() == 9
    assert all("defects" in image.params for image in Image.objects.all())

    again = job_create(kind=Job.Kind.GENERATE, campaign=campaign, queue="default", params=params)
    redone = wait_for(lambda: (j := fresh(again.pk)).is_finished and j, timeout=60)
    assert {k: redone.result[k] for k in counted} == {
        "images_created": 0,
        "images_skipped": 9,
        "pairs_created": 0,
    }
    assert Image.objects.count() == 9 and Pair.objects.count() == 9


def test_generation_job_mixes_in_fidelity_gold_pairs_from_two_demo_generators(aspects):
    from annotate.models import Generator
    from annotate.services.campaigns import DEMO_GENERATOR_GLITCHY

    campaign = demo_campaign_seed(n_prompts=2)
    generators = Generator.objects.filter(name__in=[DEMO_GENERATOR, DEMO_GENERATOR_GLITCHY]).order_by("pk")
    assert generators.count() == 2
    params = {
        "campaign_id": campaign.pk,
        "generator_ids": [g.pk for g in generators],
        "images_per_prompt": 1,
        "seed": 3,
        "fidelity_gold_pairs": 2,
    }
    job = Job.objects.create(kind=Job.Kind.GENERATE, campaign=campaign, params=params)
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    result = fresh(job.pk).result
    # Seeds derive from prompt ids, which depend on what ran before in the test database: when both
    # generators happen to render a prompt without defects the two PNGs are identical and stored once
    # (sha256), so 3 or 4 images, 1 or 2 pairs.
    rendered = Image.objects.filter(generator__in=generators)
    assert result["images_created"] == rendered.count() in (3, 4)
    assert result["pairs_created"] == Pair.objects.filter(campaign=campaign, is_gold=False).count()
    assert result["pairs_created"] == result["images_created"] - 2
    assert result["gold_pairs"] == 2
    gold = list(Pair.objects.filter(campaign=campaign, is_gold=True).select_related("image_a", "image_b"))
    assert len(gold) == 2
    for pair in gold:
        assert pair.gold_answers["fidelity"] in {"A", "B"}
        corrupted = pair.image_b if pair.gold_answers["fidelity"] == "A" else pair.image_a
        assert corrupted.generator.name == "corrupted-copies"
