"""AICall claims and complete records (issue 17, findings 2, 5, 6, 7) against the real loopback server.

Two runs of one job send disjoint calls (claimed in the statement that picks them); a stale claim goes to
the next run; a duplicate result still counts what it cost; every attempt of every run stays in the
attempt log; replies that are not completions fail with the server's text; repairs are kept on the call.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.db.models import Sum
from django.utils import timezone

from annotate.models import Judgment
from core.jobs import JobContext
from core.models import Job
from pipeline.mllm.loopback_server import LoopbackServer, error_in_200, fenced_json, non_json, prose_json
from pipeline.models import AICall, AIJudgeConfig
from pipeline.services.annotation import annotation_job, annotation_params, annotation_start
from pipeline.services.annotation_calls import annotation_calls_claim, annotation_calls_ensure
from tests.factories import AIJudgeConfigFactory, CampaignFactory, PairFactory
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

KEY_ENV = "VP_TEST_LOOPBACK_KEY"


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-not-a-real-key")
    return KEY_ENV


def openai_judge(server: LoopbackServer, **fields) -> AIJudgeConfig:
    options = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, **fields.pop("options", {})}
    return AIJudgeConfigFactory(
        **{
            "provider": AIJudgeConfig.Provider.OPENAI,
            "model": "loopback-judge",
            "base_url": server.base_url,
            "api_key_env": KEY_ENV,
            "concurrency": 4,
            "max_attempts": 3,
            "timeout_s": 5.0,
            "price_per_1k_prompt_tokens": Decimal("0.01"),
            "price_per_1k_completion_tokens": Decimal("0.03"),
            "options": options,
            **fields,
        }
    )


def annotation_job_row(campaign, judge) -> Job:
    params = annotation_params(campaign=campaign, judge_config=judge)
    return Job.objects.create(
        kind="annotate", params=params.to_json(), queue="ai", campaign=campaign, status=Job.Status.RUNNING
    )


def recorded_tokens(job: Job) -> tuple[int, int]:
    totals = AICall.objects.filter(job=job).aggregate(p=Sum("prompt_tokens"), c=Sum("completion_tokens"))
    return totals["p"] or 0, totals["c"] or 0


@pytest.mark.slow
def test_two_runs_of_one_job_never_send_the_same_call(aspects, api_key):
    """Finding 2: two runs of a job (a message redelivered while the first ran) both sent the pending
    calls, paid twice, and the discarded results' tokens were never recorded."""
    campaign = CampaignFactory(aspects=aspects)
    pairs = [PairFactory(campaign=campaign) for _ in range(24)]
    with LoopbackServer(latency_s=0.1) as server:
        judge = openai_judge(server)
        job = annotation_job_row(campaign, judge)
        start = threading.Barrier(2)
        results: list[dict] = []

        def run() -> None:
            try:
                start.wait(5)
                # No owner on the context: each handler run names itself, as two workers would.
                results.append(annotation_job(JobContext(Job.objects.get(pk=job.pk))))
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert server.sent_twice() == {}, "a call was sent by both runs"
        assert len(server.chat_requests) == len(pairs)
        served = server.usage
    assert len(results) == 2
    assert recorded_tokens(job) == served  # tokens recorded == tokens served
    judgments = Judgment.objects.filter(ai_call__job=job)
    assert judgments.count() == len(pairs) * len(aspects)
    assert AICall.objects.filter(job=job, status=AICall.Status.SUCCEEDED).count() == len(pairs)
    assert not AICall.objects.filter(job=job).exclude(claimed_by="").exists()  # every claim released


def test_claims_are_disjoint_and_a_stale_claim_is_taken_by_the_next_run(aspects, settings):
    campaign = CampaignFactory(aspects=aspects)
    for _ in range(6):
        PairFactory(campaign=campaign)
    judge = AIJudgeConfigFactory()
    job = annotation_job_row(campaign, judge)
    annotation_calls_ensure(
        job=job,
        campaign=campaign,
        judge_config=judge,
        params=annotation_params(campaign=campaign, judge_config=judge),
    )
    first = annotation_calls_claim(job=job, owner="host:1/a", after_pk=0, limit=4)
    second = annotation_calls_claim(job=job, owner="host:2/b", after_pk=0, limit=4)
    assert len(first) == 4 and len(second) == 2 and not set(first) & set(second)
    assert annotation_calls_claim(job=job, owner="host:3/c", after_pk=0, limit=4) == []
    # The first run dies: once its claims are older than the lease timeout, the next run takes them.
    old = timezone.now() - timedelta(seconds=settings.JOB_LEASE_TIMEOUT_S + 1)
    AICall.objects.filter(pk__in=first).update(claimed_at=old)
    assert annotation_calls_claim(job=job, owner="host:3/c", after_pk=0, limit=10) == first


@pytest.mark.slow
def test_a_duplicate_result_adds_its_tokens_and_attempts_but_no_judgment(aspects, api_key):
    campaign = CampaignFactory(aspects=aspects)
    PairFactory(campaign=campaign)
    with LoopbackServer() as server:
        judge = openai_judge(server)
        job = annotation_job_row(campaign, judge)
        annotation_job(JobContext(job))
        call = AICall.objects.get(job=job)
        # A second run that outlived its lease sent the same call again and records it now.
        AICall.objects.filter(pk=call.pk).update(status=AICall.Status.PENDING)
        annotation_job(JobContext(job))
        served = server.usage
    call.refresh_from_db()
    assert call.attempts == 2 and len(call.attempt_log) == 2
    assert recorded_tokens(job) == served
    assert Judgment.objects.filter(ai_call=call).count() == len(aspects)


def finished(job: Job, timeout: float = 60.0) -> Job:
    return wait_for(lambda: (j := Job.objects.get(pk=job.pk)).is_finished and j, timeout=timeout)


HTML = "<html><body><h1>502 Bad Gateway</h1></body></html>"


@pytest.mark.slow
def test_non_json_and_error_in_200_are_retried_then_failed_with_the_servers_text(worker, aspects, api_key):
    """Findings 5 and 6: a non-JSON 200 was an internal_error with no attempts and its earlier tokens
    dropped; an error object inside a 200 was "the answer is empty", the server's message lost."""
    campaign = CampaignFactory(aspects=aspects)
    pairs = [PairFactory(campaign=campaign) for _ in range(4)]
    with LoopbackServer() as server:
        judge = openai_judge(server, concurrency=1, max_attempts=3)
        # One call at a time: the first sent gets HTML three times, the second an error object three times,
        # the third one of each and then an answer, the fourth an answer.
        server.script(*[non_json(HTML)] * 3, *[error_in_200("model overloaded")] * 3)
        server.script(non_json(HTML), error_in_200("model overloaded"))
        job = finished(annotation_start(campaign=campaign, judge_config=judge))
        served = server.usage
    assert job.status == Job.Status.SUCCEEDED, job.error
    # Calls go out in whatever order their images finish encoding: find each by what happened to it.
    calls = AICall.objects.filter(job=job)
    html = calls.get(error_reason="invalid_response")
    overloaded = calls.get(error_reason="error_response")
    recovered = calls.get(status=AICall.Status.SUCCEEDED, attempts=3)
    assert html.status == AICall.Status.FAILED
    assert "502 Bad Gateway" in html.error_message and html.raw_response == HTML
    assert overloaded.status == AICall.Status.FAILED and "model overloaded" in overloaded.error_message
    for call in (html, overloaded):
        assert call.attempts == 3 and len(call.attempt_log) == 3
        assert all(a["http_status"] == 200 and a["raw_text"] and a["latency_s"] > 0 for a in call.attempt_log)
    assert [a["outcome"] for a in recovered.attempt_log] == ["invalid_response", "error_response", "ok"]
    assert calls.filter(status=AICall.Status.SUCCEEDED, attempts=1).count() == 1
    assert job.result["failures_by_reason"] == {"invalid_response": 1, "error_response": 1}
    assert recorded_tokens(job) == served == (job.result["prompt_tokens"], job.result["completion_tokens"])
    assert Judgment.objects.filter(ai_call__job=job).count() == 2 * len(aspects)
    assert calls.count() == len(pairs)


@pytest.mark.slow
def test_a_resumed_run_keeps_the_earlier_runs_attempts_and_records_repairs(worker, aspects, api_key):
    campaign = CampaignFactory(aspects=aspects)
    for _ in range(3):
        PairFactory(campaign=campaign)
    with LoopbackServer() as server:
        judge = openai_judge(server, concurrency=1, max_attempts=2)
        server.script(error_in_200(), error_in_200(), fenced_json(), prose_json())
        job = finished(annotation_start(campaign=campaign, judge_config=judge))
        failed = AICall.objects.get(job=job, status=AICall.Status.FAILED)
        assert failed.error_reason == "error_response" and len(failed.attempt_log) == 2
        repairs = Counter(r for c in AICall.objects.filter(job=job) for r in c.repairs)
        assert repairs == Counter({"json_in_fence": 1, "json_in_prose": 1})
        # The job runs again (an admin retries it): the retryable failure is sent again and succeeds.
        Job.objects.filter(pk=job.pk).update(status=Job.Status.PENDING, sent_at=None, finished_at=None)
        from core.jobs import job_enqueue

        job_enqueue(job=Job.objects.get(pk=job.pk))
        job = wait_for(lambda: (j := Job.objects.get(pk=job.pk)).status == Job.Status.SUCCEEDED and j)
        served = server.usage
    failed.refresh_from_db()
    assert failed.status == AICall.Status.SUCCEEDED
    assert [a["outcome"] for a in failed.attempt_log] == ["error_response", "error_response", "ok"]
    assert failed.attempts == 3
    assert recorded_tokens(job) == served
