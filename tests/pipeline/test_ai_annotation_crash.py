"""Killing the worker process mid-batch: a second worker finishes the batch, no pair twice, none skipped.

Real processes: two `celery -A config worker` subprocesses on the test's Redis and PostgreSQL database.
The first one is SIGKILLed while calls are in flight; with a short Redis visibility timeout the
unacknowledged message is handed to the second worker, whose run of the job resumes from the AICall rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count

from annotate.models import Judgment
from core.models import Job
from pipeline.mllm.loopback_server import LoopbackServer
from pipeline.models import AICall
from pipeline.services.annotation import annotation_start
from tests.factories import AIJudgeConfigFactory, CampaignFactory, PairFactory
from tests.helpers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
KEY_ENV = "VP_TEST_LOOPBACK_KEY"
VISIBILITY_TIMEOUT_S = 3


def database_url() -> str:
    db = settings.DATABASES["default"]
    if connection.vendor != "postgresql":
        pytest.skip("worker processes need a database server shared with the test (PostgreSQL)")
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(name: str, log_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S),
        KEY_ENV: "sk-test-not-a-real-key",
        "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "ai", "-P", "solo",
        "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info",
    ]  # fmt: skip
    log = (log_dir / f"{name}.log").open("wb")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def test_killing_the_worker_mid_batch_then_a_new_worker_finishes_without_duplicates(
    purged_queues, aspects, tmp_path, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, "sk-test-not-a-real-key")
    campaign = CampaignFactory(aspects=aspects)
    pairs = [PairFactory(campaign=campaign) for _ in range(40)]
    with LoopbackServer(latency_s=0.25) as server:
        judge = AIJudgeConfigFactory(
            provider="openai",
            model="loopback-judge",
            base_url=server.base_url,
            api_key_env=KEY_ENV,
            concurrency=4,
            options={"backoff_base_s": 0.01},
        )
        first = start_worker("first", tmp_path)
        second = None
        try:
            job = annotation_start(campaign=campaign, judge_config=judge)
            succeeded = AICall.objects.filter(job=job, status=AICall.Status.SUCCEEDED)
            wait_for(lambda: succeeded.count() >= 8, timeout=60)
            os.kill(first.pid, signal.SIGKILL)  # mid-batch: calls in flight, results unrecorded
            first.wait(timeout=10)
            done_at_kill = succeeded.count()
            assert done_at_kill < len(pairs), "the batch finished before the kill; make it slower"
            assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING

            # A worker sweeps the unacknowledged messages older than the visibility timeout when it
            # starts (and every ~100 s after): start the new one once the dead one's message is stale.
            time.sleep(VISIBILITY_TIMEOUT_S + 0.5)
            second = start_worker("second", tmp_path)
            job = wait_for(lambda: (j := Job.objects.get(pk=job.pk)).is_finished and j, timeout=90)
        finally:
            stop(first)
            if second is not None:
                stop(second)
        sent = len(server.chat_requests)

    logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in tmp_path.glob("*.log"))
    assert job.status == Job.Status.SUCCEEDED, (job.error, logs)
    assert job.attempts == 2 and "resuming after an interrupted run" in job.log
    calls = AICall.objects.filter(job=job)
    assert calls.count() == len(pairs)  # the work list was not created twice
    assert calls.filter(status=AICall.Status.SUCCEEDED).count() == len(pairs)
    judgments = Judgment.objects.filter(annotator__ai_judge=judge)
    assert judgments.count() == len(pairs) * len(aspects)  # no pair skipped, none labelled twice
    per_key = judgments.values("pair", "aspect", "trial").annotate(n=Count("pk"))
    assert max(row["n"] for row in per_key) == 1
    assert set(judgments.values_list("pair", flat=True)) == {p.pk for p in pairs}
    # Calls recorded before the kill were not sent again: at most the ones in flight were repeated.
    assert len(pairs) <= sent <= len(pairs) + judge.concurrency * 2
    assert job.progress_done == job.progress_total == len(pairs)
