"""Prompt polishing jobs against the real loopback OpenAI-compatible server, run by a real Celery worker."""

from __future__ import annotations

import json

import pytest

from annotate.models import Prompt
from annotate.services.prompts import prompt_get_or_create
from core.models import Job
from pipeline.mllm.loopback_server import LoopbackServer, Reply, content, rate_limited, server_error
from pipeline.mllm.polish import PolishAnswerError, polish_answer_parse
from pipeline.models import AIJudgeConfig
from pipeline.services.polish import polish_start
from tests.factories import AIJudgeConfigFactory, CampaignFactory
from tests.helpers import fresh, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

KEY_ENV = "VP_TEST_POLISH_KEY"
KEY = "sk-test-polish-secret-123"


def polisher(body: dict) -> Reply:
    """A scripted LLM: capitalises the prompt, adds a full stop, and calls anything with "gore" unsafe."""
    text = body["messages"][-1]["content"].removeprefix("Prompt: ")
    polished = text[:1].upper() + text[1:].rstrip(".") + "."
    answer = {"polished": polished, "unsafe": "gore" in text}
    return content(json.dumps(answer))(body)


@pytest.fixture
def llm(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with LoopbackServer(responder=polisher) as server:
        yield server


def judge_for(server: LoopbackServer, **fields) -> AIJudgeConfig:
    defaults = {
        "provider": AIJudgeConfig.Provider.OPENAI,
        "model": "loopback-writer",
        "base_url": server.base_url,
        "api_key_env": KEY_ENV,
        "concurrency": 1,
        "max_attempts": 3,
        "price_per_1k_prompt_tokens": "0.5",
    }
    return AIJudgeConfigFactory(**{**defaults, **fields})


def campaign_with(*texts: str):
    campaign = CampaignFactory()
    campaign.prompts.set([prompt_get_or_create(text=t)[0] for t in texts])
    return campaign


def run(job: Job) -> Job:
    return wait_for(lambda: (j := fresh(job.pk)).is_finished and j, timeout=60)


def test_polishing_keeps_raw_and_polished_linked_flags_unsafe_and_is_idempotent(worker, llm):
    campaign = campaign_with("a cat on a mat", "gore in a dark alley", "Already fine.")
    judge = judge_for(llm)
    done = run(polish_start(campaign=campaign, ai_config=judge))
    assert done.status == Job.Status.SUCCEEDED, done.error
    assert done.result == {
        "polished": 2,
        "unchanged": 1,  # "Already fine." comes back as itself
        "unsafe": 1,
        "skipped": 0,
        "failed": 0,
        "failures": [],
    }
    assert (done.progress_done, done.progress_total) == (3, 3)
    cat = Prompt.objects.get(text="a cat on a mat")
    polished = cat.polished_versions.get()
    assert (polished.text, polished.source, polished.is_unsafe) == ("A cat on a mat.", "polished", False)
    assert cat.meta["polish"] == {"prompt_id": polished.pk, "model": "loopback-writer", "unchanged": False}
    gore = Prompt.objects.get(text="gore in a dark alley")
    assert gore.is_unsafe and gore.polished_versions.get().is_unsafe
    assert set(campaign.prompts.values_list("text", flat=True)) >= {"A cat on a mat.", "a cat on a mat"}
    assert done.cost_usd > 0

    # The key went over the wire as a header and nowhere else.
    assert all(r.authorized for r in llm.chat_requests)
    for text in (done.log, json.dumps(done.params), json.dumps(done.result), done.error):
        assert KEY not in text

    asked = len(llm.chat_requests)
    again = run(polish_start(campaign=campaign, ai_config=judge))
    assert again.status == Job.Status.SUCCEEDED
    assert again.result["skipped"] == 3 and again.result["polished"] == 0
    assert len(llm.chat_requests) == asked, "a re-run asks the model nothing"


def test_rate_limits_and_server_errors_are_retried_and_lasting_failures_are_recorded(worker, llm):
    campaign = campaign_with("one owl", "two owls", "three owls")
    # The first prompt meets a 429 and a 503 before an answer; the second gets a broken answer and then
    # a good one; the third fails three times (max_attempts) and is recorded, not fatal.
    llm.script(
        rate_limited(retry_after_ms=50),
        server_error(503),
        polisher,
        content("Sure! Here you go: polished owls"),
        polisher,
        server_error(500),
        server_error(500),
        server_error(500),
    )
    done = run(polish_start(campaign=campaign, ai_config=judge_for(llm)))
    assert done.status == Job.Status.SUCCEEDED, done.error
    assert (done.result["polished"], done.result["failed"]) == (2, 1)
    [failure] = done.result["failures"]
    assert failure["prompt_id"] == Prompt.objects.get(text="three owls").pk
    assert failure["error"].startswith("HTTP 500: InternalServerError")
    assert f"prompt {failure['prompt_id']}: failed: HTTP 500" in done.log
    assert [r.status for r in llm.chat_requests] == [429, 503, 200, 200, 200, 500, 500, 500]

    # The failed prompt is polished by the next run; the others are not asked again.
    again = run(polish_start(campaign=campaign, ai_config=judge_for(llm)))
    assert (again.result["polished"], again.result["skipped"]) == (1, 2)


def test_a_job_whose_key_variable_is_missing_fails_with_a_clear_message(worker, llm):
    campaign = campaign_with("a heron")
    job = polish_start(
        campaign=campaign, base_url=llm.base_url, model="loopback-writer", api_key_env="VP_TEST_NO_SUCH_KEY"
    )
    done = run(job)
    assert done.status == Job.Status.FAILED
    assert (
        done.error == "RuntimeError: environment variable VP_TEST_NO_SUCH_KEY (the LLM's API key) is not set"
    )
    assert llm.chat_requests == []


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("", "empty answer"),
        ("no json here", "no JSON object"),
        ('{"polished": "x"}', '"unsafe" is missing'),
        ('{"polished": "", "unsafe": false}', '"polished" is missing'),
        ('{"polished": "x", "unsafe": "no"}', '"unsafe" is missing or not true/false'),
    ],
)
def test_answer_validation(answer, message):
    with pytest.raises(PolishAnswerError, match=message):
        polish_answer_parse(answer)


def test_answer_in_a_fence_is_accepted():
    assert polish_answer_parse('```json\n{"polished": " A  fox. ", "unsafe": false}\n```') == (
        "A fox.",
        False,
    )
