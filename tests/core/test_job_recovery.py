"""Jobs across crashes and outages with real processes (issue 17): Celery workers, beat and the web server
as separate processes, a redis-server of the test's own as the broker (so it can be stopped and started),
PostgreSQL, and the loopback OpenAI server with its request log.

Short life-cycle settings in the processes (tests.processes.FAST_LIFECYCLE): a lease goes stale after 3 s,
the sweeper runs every second.
"""

from __future__ import annotations

import re
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Sum
from django.test import Client

from annotate.models import Judgment
from config.celery_app import app as celery_app
from core.jobs import DemoParams, job_create, job_enqueue
from core.models import Job
from pipeline.mllm.loopback_server import LoopbackServer
from pipeline.models import AICall, AIJudgeConfig
from pipeline.services.annotation import annotation_start
from tests import processes
from tests.factories import AIJudgeConfigFactory, CampaignFactory, PairFactory
from tests.helpers import fresh, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

KEY_ENV = "VP_TEST_LOOPBACK_KEY"
LEASE_S = float(processes.FAST_LIFECYCLE["JOB_LEASE_TIMEOUT_S"])
SWEEP_S = float(processes.FAST_LIFECYCLE["JOB_SWEEP_INTERVAL_S"])
HEARTBEAT_S = float(processes.FAST_LIFECYCLE["JOB_HEARTBEAT_INTERVAL_S"])


def database_url() -> str:
    db = settings.DATABASES["default"]
    if connection.vendor != "postgresql":
        pytest.skip("worker processes need a database server shared with the test (PostgreSQL)")
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Stack:
    """The test's broker and the processes it started; everything is stopped at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.redis = processes.RedisServer(tmp_path).start()
        self.children: list = []
        self.env = processes.process_env(
            database_url=database_url(),
            broker_url=self.redis.url,
            media_root=str(settings.MEDIA_ROOT),
            **processes.FAST_LIFECYCLE,
            **{KEY_ENV: "sk-test-not-a-real-key"},
        )

    def worker(self, name: str, **kwargs):
        process = processes.start_worker(name, env=self.env, log_dir=self.dir, **kwargs)
        self.children.append(process)
        return process

    def beat(self):
        process = processes.start_beat(env=self.env, log_dir=self.dir)
        self.children.append(process)
        return process

    def web(self, port: int):
        command = [processes.sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        process = processes.start(command, env=self.env, log=self.dir / "web.log")
        self.children.append(process)
        return process

    def ready(self, name: str) -> None:
        processes.wait_for_log(self.dir / f"{name}.log", "ready.", timeout=90)

    def close(self) -> None:
        for child in self.children:
            processes.kill_group(child, signal.SIGKILL)
        self.redis.stop()

    def logs(self) -> str:
        return processes.logs(self.dir)


@pytest.fixture
def stack(tmp_path, purged_queues):
    """A redis-server of this test's own, which this process's Celery app publishes to."""
    stack = Stack(tmp_path)
    saved = celery_app.conf.broker_url, celery_app.conf.broker_write_url
    celery_app.conf.broker_url, celery_app.conf.broker_write_url = stack.redis.url, None
    try:
        yield stack
    finally:
        celery_app.conf.broker_url, celery_app.conf.broker_write_url = saved
        stack.close()


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-not-a-real-key")


def loopback_judge(server: LoopbackServer, concurrency: int) -> AIJudgeConfig:
    return AIJudgeConfigFactory(
        provider=AIJudgeConfig.Provider.OPENAI,
        model="loopback-judge",
        base_url=server.base_url,
        api_key_env=KEY_ENV,
        concurrency=concurrency,
        options={"backoff_base_s": 0.01},
    )


def assert_judged_once(job: Job, judge: AIJudgeConfig, n_pairs: int, n_aspects: int) -> None:
    calls = AICall.objects.filter(job=job)
    assert calls.count() == n_pairs  # the work list was not created twice
    assert calls.filter(status=AICall.Status.SUCCEEDED).count() == n_pairs
    judgments = Judgment.objects.filter(annotator__ai_judge=judge)
    assert judgments.count() == n_pairs * n_aspects  # none skipped, none twice
    per_key = judgments.values("pair", "aspect", "trial").annotate(n=Count("pk"))
    assert max(row["n"] for row in per_key) == 1


def recorded_tokens(job: Job) -> tuple[int, int]:
    totals = AICall.objects.filter(job=job).aggregate(p=Sum("prompt_tokens"), c=Sum("completion_tokens"))
    return totals["p"] or 0, totals["c"] or 0


def test_sigkill_of_the_whole_worker_mid_batch_a_new_worker_takes_over_within_the_lease(
    stack, aspects, api_key
):
    """Finding 1: the job waited for the broker's visibility timeout (13 h), showing "Running"."""
    campaign = CampaignFactory(aspects=aspects)
    pairs = [PairFactory(campaign=campaign) for _ in range(40)]
    with LoopbackServer(latency_s=0.25) as server:
        judge = loopback_judge(server, concurrency=4)
        first = stack.worker("first")
        stack.beat()
        stack.ready("first")
        job = annotation_start(campaign=campaign, judge_config=judge)
        succeeded = AICall.objects.filter(job=job, status=AICall.Status.SUCCEEDED)
        wait_for(lambda: succeeded.count() >= 8, timeout=60)
        recorded_at_kill = set(succeeded.values_list("pk", flat=True))
        processes.kill_group(first)  # the whole worker: main process and every thread, no goodbye
        killed_at, killed_wall = time.monotonic(), time.time()
        assert len(recorded_at_kill) < len(pairs), "the batch finished before the kill; make it slower"
        assert fresh(job.pk).status == Job.Status.RUNNING

        stack.worker("second")  # what compose's restart policy or `make demo` does
        wait_for(lambda: fresh(job.pk).attempts >= 2, timeout=LEASE_S + SWEEP_S + 60)
        recovery_s = time.monotonic() - killed_at
        job = wait_for(lambda: (j := fresh(job.pk)).is_finished and j, timeout=90)
        requests = server.chat_requests
        served = server.usage

    assert job.status == Job.Status.SUCCEEDED, (job.error, stack.logs())
    assert job.attempts == 2
    assert "stopped heartbeating; queued again" in job.log and "resuming after an interrupted run" in job.log
    # Taken over once the lease went stale: not before it, and not much later (sweep + worker start). The
    # lease counts from the last heartbeat, which came up to one interval before the kill (and the clock
    # starts once the kill returned), so the takeover may come that much earlier than LEASE_S after it.
    assert LEASE_S - HEARTBEAT_S - 0.5 <= recovery_s < LEASE_S + SWEEP_S + 45, recovery_s
    assert_judged_once(job, judge, len(pairs), len(aspects))
    assert job.progress_done == job.progress_total == len(pairs)

    # The server's request log: a call is sent twice only if it was in flight when the worker died.
    sends = Counter(r.fingerprint for r in requests)
    resent = {fingerprint for fingerprint, n in sends.items() if n > 1}
    assert max(sends.values()) <= 2
    assert len(resent) <= judge.concurrency * 2  # in flight or taken from the queue, never recorded
    assert len(requests) == len(pairs) + len(resent)
    # No call recorded before the kill was sent again.
    assert AICall.objects.filter(pk__in=recorded_at_kill, attempts__gt=1).count() == 0
    # Tokens: everything served is recorded, except replies the dead worker got and never wrote down.
    lost = [r for r in requests if r.delivered and r.received_at < killed_wall and r.fingerprint in resent]
    expected = (
        served[0] - sum(r.prompt_tokens for r in lost),
        served[1] - sum(r.completion_tokens for r in lost),
    )
    assert recorded_tokens(job) == expected


def test_two_workers_given_the_same_job_one_runs_the_other_returns_at_once(stack, aspects, api_key):
    """Finding 2: two deliveries of one job's message ran it twice, paid twice, tokens lost."""
    campaign = CampaignFactory(aspects=aspects)
    pairs = [PairFactory(campaign=campaign) for _ in range(16)]
    with LoopbackServer(latency_s=0.25) as server:
        judge = loopback_judge(server, concurrency=2)
        # One message at a time per worker, so the second delivery goes to the other worker.
        for name in ("one", "two"):
            stack.worker(name, queues="ai", pool="solo")
        for name in ("one", "two"):
            stack.ready(name)
        job = annotation_start(campaign=campaign, judge_config=judge)
        assert job_enqueue(job=fresh(job.pk))  # the same job's message a second time
        job = wait_for(lambda: (j := fresh(job.pk)).is_finished and j, timeout=90)
        assert server.sent_twice() == {}
        served = server.usage
    assert job.status == Job.Status.SUCCEEDED, (job.error, stack.logs())
    assert job.attempts == 1
    assert_judged_once(job, judge, len(pairs), len(aspects))
    assert recorded_tokens(job) == served  # tokens recorded == tokens the server reported
    assert (job.result["prompt_tokens"], job.result["completion_tokens"]) == served
    # One worker ran it; the other's delivery returned at once without touching it.
    leased = [
        float(m.group(1))
        for name in ("one", "two")
        for m in re.finditer(r"succeeded in ([0-9.]+)s: 'leased'", (stack.dir / f"{name}.log").read_text())
    ]
    assert len(leased) == 1 and leased[0] < 1.0, stack.logs()


def admin_session(base: str) -> tuple[urllib.request.OpenerDirector, dict[str, str]]:
    """An opener carrying a staff user's session cookie and the page's CSRF token."""
    user = get_user_model().objects.create_user("boss", password="pw-boss-1234", is_staff=True)
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003 - urllib's signature
            return None

    opener = urllib.request.build_opener(NoRedirect)
    opener.addheaders = [("Cookie", cookie)]
    with opener.open(f"{base}/jobs/", timeout=30) as response:
        page = response.read().decode()
        csrf_cookie = re.search(r"csrftoken=([^;]+)", response.headers.get("Set-Cookie", "")).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    opener.addheaders = [("Cookie", f"{cookie}; csrftoken={csrf_cookie}")]
    return opener, {"csrfmiddlewaretoken": token}


def test_launching_while_the_broker_is_down_answers_at_once_and_runs_when_it_is_back(stack, aspects):
    """Finding 3: HTTP 500 after ~20 s, and the committed job stayed pending forever."""
    from tests.factories import CampaignFactory

    campaign = CampaignFactory()
    port = processes.free_port()
    stack.web(port)
    stack.worker("worker", queues="default")
    stack.beat()
    base = f"http://127.0.0.1:{port}"
    processes.wait_for_log(stack.dir / "web.log", "Quit the server", timeout=90)
    stack.ready("worker")
    opener, form = admin_session(base)

    stack.redis.stop()
    started = time.monotonic()
    request = urllib.request.Request(
        f"{base}/campaigns/{campaign.slug}/report/refresh/",  # launches a report job
        data=urllib.parse.urlencode(form).encode(),
        method="POST",
    )
    try:
        opener.open(request, timeout=30)
        status = 200
    except urllib.error.HTTPError as exc:
        status = exc.code
    elapsed = time.monotonic() - started
    assert status == 302 and elapsed < 15, (status, elapsed, stack.logs())
    job = Job.objects.get()
    assert job.is_queued_not_sent and job.send_error
    with opener.open(f"{base}/jobs/", timeout=30) as response:
        assert "queued, not sent" in response.read().decode()

    time.sleep(2)  # the sweeper finds no broker either; the job waits in the outbox
    assert fresh(job.pk).is_queued_not_sent
    stack.redis.start()
    done = wait_for(lambda: (j := fresh(job.pk)).is_finished and j, timeout=90)
    assert done.status == Job.Status.SUCCEEDED, stack.logs()
    assert done.sent_at is not None and done.attempts == 1


def test_a_broker_restart_with_a_job_in_flight_keeps_the_worker_and_the_job_completes(stack):
    """Finding 4: kombu's Redis transport killed the worker ("Unrecoverable error") when Redis restarted
    while a task ran; later jobs stayed pending."""
    worker = stack.worker("worker", queues="default")
    stack.ready("worker")
    job = job_create(kind="demo", params=DemoParams(steps=30, sleep_s=0.2))
    wait_for(lambda: fresh(job.pk).progress_done >= 3, timeout=60)
    stack.redis.stop()
    time.sleep(1.0)
    stack.redis.start()
    done = wait_for(lambda: (j := fresh(job.pk)).is_finished and j, timeout=60)
    assert done.status == Job.Status.SUCCEEDED and done.attempts == 1, stack.logs()
    assert worker.poll() is None, stack.logs()  # the same worker survived
    log = (stack.dir / "worker.log").read_text()
    assert "Unrecoverable error" not in log
    # ...and it consumes again: a job sent after the restart runs too.
    later = job_create(kind="demo", params=DemoParams(steps=2, sleep_s=0.01))
    later = wait_for(lambda: (j := fresh(later.pk)).is_finished and j, timeout=60)
    assert later.status == Job.Status.SUCCEEDED, stack.logs()
    assert worker.poll() is None
