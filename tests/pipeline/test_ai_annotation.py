"""AI annotation jobs against the real loopback OpenAI server and a real Celery worker."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from itertools import combinations

import pytest
from django.utils import timezone

from annotate.models import Judgment, Pair
from core.jobs import FollowUp, job_create, job_run
from core.models import Job
from pipeline.mllm.loopback_server import (
    LoopbackServer,
    content,
    empty,
    fenced_json,
    invalid_json,
    missing_aspect,
    prose_json,
    rate_limited,
    refusal,
    refusal_field,
    score_out_of_range,
    scores_as_strings,
    server_error,
    slow,
    truncated,
)
from pipeline.models import AICall, AIJudgeConfig
from pipeline.services.annotation import annotation_estimate, annotation_start
from pipeline.services.judges import judge_annotator
from tests.factories import (
    AIJudgeConfigFactory,
    CampaignFactory,
    GeneratorFactory,
    ImageFactory,
    PairFactory,
    PromptFactory,
)
from tests.helpers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

KEY_ENV = "VP_TEST_LOOPBACK_KEY"


def finished(job: Job, timeout: float = 60.0) -> Job:
    return wait_for(lambda: (j := Job.objects.get(pk=job.pk)).is_finished and j, timeout=timeout)


@pytest.fixture
def loopback():
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-not-a-real-key")
    return KEY_ENV


def openai_judge(server: LoopbackServer, **fields) -> AIJudgeConfig:
    options = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, **fields.pop("options", {})}
    defaults = {
        "provider": AIJudgeConfig.Provider.OPENAI,
        "model": "loopback-judge",
        "base_url": server.base_url,
        "api_key_env": KEY_ENV,
        "concurrency": 4,
        "max_attempts": 4,
        "timeout_s": 5.0,
        "price_per_1k_prompt_tokens": Decimal("0.01"),
        "price_per_1k_completion_tokens": Decimal("0.03"),
        "options": options,
    }
    defaults.update(fields)
    return AIJudgeConfigFactory(**defaults)


def campaign_with_pairs(n: int, aspects):
    campaign = CampaignFactory(aspects=aspects)
    pairs = [PairFactory(campaign=campaign) for _ in range(n)]
    return campaign, pairs


def assert_every_pair_done(job: Job, pairs: list[Pair], n_aspects: int, trials: int = 1) -> None:
    """Every pair has all its judgments, or a recorded failed call with reason and raw text."""
    for pair in pairs:
        calls = [c for c in AICall.objects.filter(job=job) if pair.pk in c.pair_ids]
        assert len(calls) == trials
        for call in calls:
            assert call.status in (AICall.Status.SUCCEEDED, AICall.Status.FAILED), call
            got = Judgment.objects.filter(pair=pair, ai_call=call).count()
            if call.status == AICall.Status.SUCCEEDED:
                assert got == n_aspects
            else:
                assert got == 0 and call.error_reason


def test_normal_answers_with_swap_trial(worker, aspects, loopback, api_key):
    campaign, pairs = campaign_with_pairs(5, aspects)
    judge = openai_judge(loopback, swap_trial=True)
    estimate = annotation_estimate(campaign=campaign, judge_config=judge)
    assert (estimate.pairs, estimate.calls, estimate.judgments) == (5, 10, 40)
    assert estimate.prompt_tokens > 0 and estimate.cost_usd > 0

    job = finished(annotation_start(campaign=campaign, judge_config=judge))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.queue == "ai"
    assert_every_pair_done(job, pairs, n_aspects=4, trials=2)
    annotator = judge_annotator(judge)
    judgments = Judgment.objects.filter(annotator=annotator)
    assert judgments.count() == 5 * 4 * 2
    # Trial 1 in the order the job drew for the pair, trial 2 its mirror; both as the call showed them.
    orders = {(j.pair_id, j.trial): j.presented_order for j in judgments.select_related("ai_call")}
    mirror = {"AB": "BA", "BA": "AB"}
    for pair in pairs:
        assert orders[(pair.pk, 2)] == mirror[orders[(pair.pk, 1)]]
    for j in judgments.select_related("ai_call", "pair"):
        shown_first = j.ai_call.image_ids[0]
        assert j.presented_order == ("AB" if shown_first == j.pair.image_a_id else "BA")
    assert set(judgments.values_list("template_version", flat=True)) == {"vp-pair-v1"}
    # Usage: what the server reported is what the job says, and the cost follows the prices.
    prompt_tokens, completion_tokens = loopback.usage
    assert (job.result["prompt_tokens"], job.result["completion_tokens"]) == (
        prompt_tokens,
        completion_tokens,
    )
    expected = (
        Decimal(prompt_tokens) * Decimal("0.01") + Decimal(completion_tokens) * Decimal("0.03")
    ) / 1000
    assert abs(job.cost_usd - expected) < Decimal("0.00002")
    assert (job.progress_done, job.progress_total) == (10, 10)
    assert len(loopback.chat_requests) == 10
    call = AICall.objects.filter(job=job).first()
    assert "<image: A = " in call.rendered_prompt and call.raw_response.startswith("{")
    assert call.latency_s is not None and call.finish_reason == "stop"

    # Launching "only unlabelled" now finds nothing to do.
    again = finished(annotation_start(campaign=campaign, judge_config=judge, selection="unlabelled"))
    assert again.result["calls"] == 0 and len(loopback.chat_requests) == 10


def test_429_with_retry_after_and_5xx_are_retried(worker, aspects, loopback, api_key):
    campaign, pairs = campaign_with_pairs(4, aspects)
    judge = openai_judge(loopback, concurrency=2)
    loopback.script(rate_limited(retry_after=0.3), server_error(500), server_error(503))
    job = finished(annotation_start(campaign=campaign, judge_config=judge))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert_every_pair_done(job, pairs, n_aspects=4)
    assert job.result["succeeded"] == 4 and job.result["failed"] == 0
    statuses = Counter(r.status for r in loopback.chat_requests)
    assert statuses == Counter({200: 4, 429: 1, 500: 1, 503: 1})
    logs = [a for c in AICall.objects.filter(job=job) for a in c.attempt_log]
    rate_limited_attempts = [i for i, a in enumerate(logs) if a["outcome"] == "rate_limited"]
    assert len(rate_limited_attempts) == 1
    # The attempt after the 429 waited at least what Retry-After said.
    assert logs[rate_limited_attempts[0] + 1]["waited_before_s"] >= 0.3
    assert sum(c.attempts for c in AICall.objects.filter(job=job)) == 7


def test_answers_slower_than_the_timeout(worker, aspects, loopback, api_key):
    campaign, pairs = campaign_with_pairs(3, aspects)
    # Two attempts per call; the first two requests time out: one call may fail for good, or two
    # calls recover on their second try. Either way every pair ends labelled or with a recorded failure.
    judge = openai_judge(loopback, concurrency=1, timeout_s=0.4, max_attempts=2)
    loopback.script(slow(1.5), slow(1.5))
    job = finished(annotation_start(campaign=campaign, judge_config=judge))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert_every_pair_done(job, pairs, n_aspects=4)
    calls = list(AICall.objects.filter(job=job))
    outcomes = [a["outcome"] for c in calls for a in c.attempt_log]
    assert outcomes.count("timeout") == 2
    failed = [c for c in calls if c.status == AICall.Status.FAILED]
    assert all(c.error_reason == "timeout" for c in failed)
    assert job.result["succeeded"] + job.result["failed"] == 3


MALFORMED = {
    # behaviour: the failure reason it is recorded with, or None where the answer is safely repaired
    "invalid_json": (invalid_json(), "invalid_json"),
    "prose_json": (prose_json(), None),
    "fenced_json": (fenced_json(), None),
    "missing_aspect": (missing_aspect(), "missing_aspect"),
    "score_out_of_range": (score_out_of_range(), "score_out_of_range"),
    "scores_as_strings": (scores_as_strings(), None),
    "refusal": (refusal(), "refusal"),
    "refusal_field": (refusal_field(), "refusal"),
    "empty": (empty(), "empty"),
    "truncated": (truncated(), "truncated"),
}


def test_each_malformed_answer_is_repaired_or_recorded_as_a_failure(worker, aspects, loopback, api_key):
    campaign, pairs = campaign_with_pairs(len(MALFORMED) + 2, aspects)
    # One parse attempt, so every bad answer shows up as a failure instead of being asked again.
    judge = openai_judge(loopback, concurrency=3, options={"max_parse_attempts": 1})
    loopback.script(*(behaviour for behaviour, _ in MALFORMED.values()))
    job = finished(annotation_start(campaign=campaign, judge_config=judge))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert_every_pair_done(job, pairs, n_aspects=4)
    expected = Counter(reason for _, reason in MALFORMED.values() if reason)
    failed = AICall.objects.filter(job=job, status=AICall.Status.FAILED)
    assert Counter(failed.values_list("error_reason", flat=True)) == expected
    assert job.result["failures_by_reason"] == dict(expected)
    for call in failed:
        assert call.error_message
        if call.error_reason != "empty":
            assert call.raw_response  # the text as it came back, for the failures page
    assert job.result["succeeded"] == len(pairs) - sum(expected.values())
    prompt_tokens, completion_tokens = loopback.usage
    assert (job.result["prompt_tokens"], job.result["completion_tokens"]) == (
        prompt_tokens,
        completion_tokens,
    )


def group_answer(image_labels, ranking, aspect_keys):
    """A group-mode answer with the same tiered ranking on every aspect; scores follow the tiers."""
    aspects = {}
    for key in aspect_keys:
        scores = {}
        for tier_index, tier in enumerate(ranking):
            for label in tier:
                scores[label] = 9 - 2 * tier_index
        aspects[key] = {"rationale": f"ranked {key}", "scores": scores, "ranking": ranking}
    return json.dumps({"aspects": aspects})


def test_group_mode_four_images_give_six_pairwise_judgments_per_aspect_ties_kept(
    worker, aspects, loopback, api_key
):
    campaign = CampaignFactory(aspects=aspects)
    prompt = PromptFactory()
    campaign.prompts.add(prompt)
    generator = GeneratorFactory()
    images = sorted((ImageFactory(prompt=prompt, generator=generator) for _ in range(4)), key=lambda i: i.pk)
    pairs = [
        Pair.objects.create(campaign=campaign, prompt=prompt, image_a=a, image_b=b)
        for a, b in combinations(images, 2)
    ]
    judge = openai_judge(loopback, mode=AIJudgeConfig.Mode.GROUP, template_version="vp-group-v1")
    estimate = annotation_estimate(campaign=campaign, judge_config=judge)
    assert (estimate.pairs, estimate.calls, estimate.judgments) == (6, 1, 24)
    keys = [a.key for a in aspects]
    # The images are shown in the job's shuffled order as A, B, C, D: A and C tie for first, then B, then D.
    loopback.script(content(group_answer("ABCD", [["A", "C"], ["B"], ["D"]], keys)))
    job = finished(annotation_start(campaign=campaign, judge_config=judge))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert len(loopback.chat_requests) == 1
    call = AICall.objects.get(job=job)
    assert (
        call.pair is None and call.prompt == prompt and sorted(call.pair_ids) == sorted(p.pk for p in pairs)
    )
    assert call.template_version == "vp-group-v1"
    assert sorted(call.image_ids) == [i.pk for i in images]
    by_id = {i.pk: i for i in images}
    a, b, c, d = (by_id[i] for i in call.image_ids)  # as shown
    tier = {a: 0, c: 0, b: 1, d: 2}
    position = {image: k for k, image in enumerate((a, b, c, d))}
    expected = {
        (x, y): "tie" if tier[x] == tier[y] else ("A" if tier[x] < tier[y] else "B")
        for x, y in combinations(images, 2)  # canonical order: image A has the lower id
    }
    for aspect in aspects:
        rows = Judgment.objects.filter(aspect=aspect, ai_call=call).select_related("pair")
        assert rows.count() == 6
        got = {(j.pair.image_a, j.pair.image_b): j.choice for j in rows}
        assert got == expected
        for j in rows:
            shown_first = position[j.pair.image_a] < position[j.pair.image_b]
            assert j.presented_order == ("AB" if shown_first else "BA")
    first, second = sorted((a, c), key=lambda i: i.pk)
    tie = Judgment.objects.get(pair__image_a=first, pair__image_b=second, aspect=aspects[0])
    assert tie.choice == "tie" and tie.score_a == tie.score_b == 9


def test_follow_up_job_annotates_with_the_simulated_judge(worker, aspects):
    from annotate.models import Generator
    from pipeline.jobs import GenerationParams
    from pipeline.services.annotation import annotation_params
    from pipeline.services.demo import DEMO_GENERATOR, demo_campaign_seed
    from pipeline.services.judges import demo_judge_ensure

    campaign = demo_campaign_seed(n_prompts=2)
    generator = Generator.objects.get(name=DEMO_GENERATOR)
    judge = demo_judge_ensure()
    assert str(judge).endswith("[simulated]")
    then = FollowUp(
        kind="annotate",
        title="simulated labels",
        params=annotation_params(campaign=campaign, judge_config=judge, selection="unlabelled"),
    )
    params = GenerationParams(
        campaign_id=campaign.pk, generator_ids=[generator.pk], images_per_prompt=3, seed=1
    )
    generation = job_create(
        kind="generate", campaign=campaign, queue="default", params=params, follow_ups=[then]
    )
    assert finished(generation).status == Job.Status.SUCCEEDED
    follow_up = wait_for(lambda: Job.objects.filter(kind="annotate").first())
    done = finished(follow_up)
    assert done.status == Job.Status.SUCCEEDED, done.error
    assert done.campaign == campaign and "queued follow-up job" in Job.objects.get(pk=generation.pk).log
    n_pairs = Pair.objects.filter(campaign=campaign).count()
    assert n_pairs == 6
    judgments = Judgment.objects.filter(annotator__ai_judge=judge)
    assert judgments.count() == n_pairs * 4
    assert all("Simulated" in r for r in judgments.values_list("rationale", flat=True))


def test_a_bad_follow_up_is_logged_and_the_job_still_succeeds():
    job = Job.objects.create(
        kind="demo", params={"steps": 1, "sleep_s": 0}, follow_ups=[{"kind": "nonsense"}]
    )
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    assert "could not queue follow-up" in Job.objects.get(pk=job.pk).log


def test_batch_api_mode_uploads_polls_ingests_and_resumes_without_a_second_batch(
    worker, aspects, loopback, api_key
):
    campaign, pairs = campaign_with_pairs(5, aspects)
    judge = openai_judge(loopback, options={"batch_poll_s": 0.05})
    loopback.batch_delay_s = 0.3  # "in_progress" for a few polls
    loopback.script(invalid_json(), server_error(500))
    job = finished(annotation_start(campaign=campaign, judge_config=judge, execution="batch"))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert_every_pair_done(job, pairs, n_aspects=4)
    assert len(loopback.batches) == 1 and job.state["batch"]["status"] == "completed"
    batch_id = job.state["batch"]["batch_id"]
    assert batch_id in loopback.batches and job.state["batch"]["input_file_id"] in loopback.files
    assert job.result["succeeded"] == 3
    assert job.result["failures_by_reason"] == {"invalid_json": 1, "server_error": 1}
    prompt_tokens, completion_tokens = loopback.usage
    assert (job.result["prompt_tokens"], job.result["completion_tokens"]) == (
        prompt_tokens,
        completion_tokens,
    )
    assert Judgment.objects.filter(ai_call__job=job).count() == 3 * 4

    # A crash after the batch was created but before its results were recorded: the re-run polls the
    # same batch, records what is missing, and duplicates nothing.
    lost = AICall.objects.filter(job=job, status=AICall.Status.SUCCEEDED).first()
    Judgment.objects.filter(ai_call=lost).delete()
    AICall.objects.filter(pk=lost.pk).update(
        status=AICall.Status.PENDING, attempts=0, prompt_tokens=0, completion_tokens=0
    )
    # The run died: its lease went stale long ago (a live lease would make this message return at once).
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    again = Job.objects.get(pk=job.pk)
    assert len(loopback.batches) == 1 and "resuming batch" in again.log
    assert Judgment.objects.filter(ai_call__job=job).count() == 3 * 4
    assert again.result["prompt_tokens"] == prompt_tokens


def test_cancelling_mid_batch_keeps_unsent_calls_pending(worker, aspects, api_key):
    from core.jobs import job_cancel

    campaign, pairs = campaign_with_pairs(12, aspects)
    with LoopbackServer(latency_s=0.3) as server:
        judge = openai_judge(server, concurrency=2)
        job = annotation_start(campaign=campaign, judge_config=judge)
        wait_for(lambda: AICall.objects.filter(job=job, status=AICall.Status.SUCCEEDED).count() >= 2)
        job_cancel(job=Job.objects.get(pk=job.pk))
        done = finished(job)
    assert done.status == Job.Status.CANCELLED
    calls = AICall.objects.filter(job=job)
    succeeded = calls.filter(status=AICall.Status.SUCCEEDED).count()
    assert 2 <= succeeded < 12 and calls.filter(status=AICall.Status.PENDING).count() == 12 - succeeded
    assert Judgment.objects.filter(ai_call__job=job).count() == succeeded * 4


@pytest.mark.django_db
def test_the_simulated_judge_prefers_the_original_on_fidelity_gold_pairs(aspects):
    from annotate.models import Generator
    from annotate.services.pairs import fidelity_gold_pairs_create
    from pipeline.services.demo import DEMO_GENERATOR, demo_campaign_seed
    from pipeline.services.generation import generation_start

    campaign = demo_campaign_seed(n_prompts=3)
    demo = Generator.objects.get(name=DEMO_GENERATOR)
    generated = generation_start(campaign=campaign, generators=[demo], images_per_prompt=2)
    assert job_run(job_id=generated.pk) == Job.Status.SUCCEEDED
    gold = fidelity_gold_pairs_create(campaign=campaign, count=3, seed=1)
    assert len(gold) == 3
    judge = AIJudgeConfigFactory(options={"flip_probability": 0.0, "seed": 1})
    job = annotation_start(campaign=campaign, judge_config=judge, selection="all")
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    fidelity = Judgment.objects.filter(pair__in=gold, aspect__key="fidelity", annotator__ai_judge=judge)
    assert fidelity.count() == 3
    for judgment in fidelity:
        assert judgment.choice == judgment.pair.gold_answers["fidelity"]
