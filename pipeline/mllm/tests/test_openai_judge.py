"""The OpenAI-compatible judge against the real loopback server: answers, retries, fallbacks, usage."""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import formatdate

import pytest

from pipeline.mllm import loopback_server as lb
from pipeline.mllm.providers import OpenAICompatibleJudge, OpenAIJudgeConfig, RetryPolicy, parse_retry_after
from pipeline.mllm.tests.helpers import API_KEY, API_KEY_ENV, FAST_RETRY, make_judge, make_request

pytestmark = pytest.mark.usefixtures("api_key")


def judge_one(judge, request):
    async def run():
        try:
            return await judge.judge(request)
        finally:
            await judge.aclose()

    return asyncio.run(run())


def test_normal_answer(server, small_image):
    result = judge_one(make_judge(server), make_request("r1", small_image))
    assert result.status == "ok", result.error
    assert result.attempts == 1 and result.finish_reason == "stop"
    assert set(result.answer.aspects) == {"prompt_following", "aesthetic", "fidelity", "harmlessness"}
    assert result.raw_text.startswith('{"aspects"')
    assert result.provider == "openai" and result.model == "loopback-judge"
    assert result.template_version == "vp-pair-v1" and result.structured
    (sent,) = server.chat_requests
    assert sent.authorized
    assert sent.body["response_format"]["type"] == "json_schema"
    assert sent.body["messages"][1]["content"][2]["image_url"]["url"] == small_image.data_url
    assert sent.body["temperature"] == 0.0 and sent.body["max_tokens"] == 1024


def test_group_mode_answer_and_pairwise(server, small_image):
    result = judge_one(make_judge(server), make_request("g1", small_image, k=4))
    assert result.ok
    assert len(result.pairwise()) == 6 * 4  # six pairs per aspect
    assert (
        "ranking"
        in server.chat_requests[0].body["response_format"]["json_schema"]["schema"]["properties"]["aspects"][
            "properties"
        ]["aesthetic"]["properties"]
    )


def test_usage_tokens_equal_what_the_server_reported(server, small_image):
    server.script(lb.answer(), lb.invalid_json(), lb.answer())  # the failed answer is billed too
    judge = make_judge(server, RetryPolicy(max_parse_attempts=2, backoff_base_s=0.01))
    results = [judge_one(judge, make_request(str(i), small_image)) for i in range(2)]
    assert [r.attempts for r in results] == [1, 2]
    prompt_tokens, completion_tokens = server.usage
    assert prompt_tokens > 0 and completion_tokens > 0
    assert sum(r.prompt_tokens for r in results) == prompt_tokens
    assert sum(r.completion_tokens for r in results) == completion_tokens


def test_429_with_retry_after_waits_then_succeeds(server, small_image):
    server.script(lb.rate_limited(retry_after=1))
    started = time.perf_counter()
    result = judge_one(make_judge(server), make_request("r", small_image))
    elapsed = time.perf_counter() - started
    assert result.ok and result.attempts == 2
    assert [a.outcome for a in result.attempt_log] == ["rate_limited", "ok"]
    assert 1.0 <= result.attempt_log[1].waited_before_s <= 1.1
    assert 1.0 <= elapsed < 2.0


def test_retry_after_as_http_date_and_ms(server, small_image):
    server.script(lb.rate_limited(retry_after=formatdate(time.time() + 2, usegmt=True)))
    result = judge_one(make_judge(server), make_request("r", small_image))
    assert result.ok
    # HTTP dates have one-second resolution: 2 s ahead means a wait of 1 to 2 s (+10% jitter).
    assert 0.9 < result.attempt_log[1].waited_before_s <= 2.2
    server.script(lb.rate_limited(retry_after=None, retry_after_ms=300))
    result = judge_one(make_judge(server), make_request("r", small_image))
    assert 0.3 <= result.attempt_log[1].waited_before_s <= 0.33


def test_retry_after_is_capped(server, small_image):
    server.script(lb.rate_limited(retry_after=3600))
    retry = RetryPolicy(max_parse_attempts=1, retry_after_cap_s=0.2)
    result = judge_one(make_judge(server, retry), make_request("r", small_image))
    assert result.ok and result.attempt_log[1].waited_before_s <= 0.22


def test_5xx_is_retried_with_backoff(server, small_image):
    server.script(lb.server_error(500), lb.server_error(503))
    result = judge_one(make_judge(server), make_request("r", small_image))
    assert result.ok
    assert [(a.outcome, a.http_status) for a in result.attempt_log] == [
        ("server_error", 500),
        ("server_error", 503),
        ("ok", 200),
    ]
    assert all(a.waited_before_s > 0 for a in result.attempt_log[1:])


def test_persistent_5xx_gives_up_as_api_error(server, small_image):
    server.script(*[lb.server_error(502)] * 10)
    result = judge_one(make_judge(server), make_request("r", small_image))
    assert result.status == "api_error"
    assert result.error.reason == "server_error" and "502" in result.error.message
    assert result.attempts == FAST_RETRY.max_attempts == len(server.chat_requests)
    assert result.answer is None


def test_timeout_is_retried(server, small_image):
    server.script(lb.slow(1.0))
    result = judge_one(make_judge(server, timeout_s=0.3), make_request("r", small_image))
    assert result.ok
    assert [a.outcome for a in result.attempt_log] == ["timeout", "ok"]
    assert 0.25 <= result.attempt_log[0].latency_s < 0.9


def test_connection_refused_is_an_api_error(small_image):
    server = lb.LoopbackServer().start()
    server.stop()  # the port is closed now
    result = judge_one(make_judge(server), make_request("r", small_image))
    assert result.status == "api_error" and result.error.reason == "connection"
    assert result.attempts == FAST_RETRY.max_attempts


def test_bad_request_is_not_retried(server, small_image):
    server.script(
        lambda body: lb.Reply(400, {"error": {"message": "model does not exist", "type": "invalid"}})
    )
    result = judge_one(make_judge(server), make_request("r", small_image))
    assert result.status == "api_error" and result.error.reason == "bad_request"
    assert result.attempts == 1


def test_auth_error_is_not_retried(server, small_image):
    server.script(lambda body: lb.Reply(401, {"error": {"message": "invalid api key", "type": "auth"}}))
    result = judge_one(make_judge(server), make_request("r", small_image))
    assert (result.status, result.error.reason, result.attempts) == ("api_error", "auth", 1)


def test_rejected_response_format_falls_back_to_plain_json_and_remembers(server, small_image):
    server.script(lb.reject_response_format())
    judge = make_judge(server)
    first = judge_one(judge, make_request("1", small_image))
    second = judge_one(judge, make_request("2", small_image))
    assert first.ok and second.ok
    assert [a.outcome for a in first.attempt_log] == ["response_format_rejected", "ok"]
    assert first.structured is False and second.attempts == 1
    bodies = [r.body for r in server.chat_requests]
    assert ["response_format" in b for b in bodies] == [True, False, False]
    # Without a response format, the prompt carries the JSON Schema itself.
    assert "```json" in bodies[1]["messages"][1]["content"][-1]["text"]


def test_server_without_response_format_support(small_image):
    with lb.LoopbackServer(supports_response_format=False) as server:
        judge = make_judge(server)
        assert judge_one(judge, make_request("1", small_image)).ok
        assert judge.structured is False


@pytest.mark.parametrize(
    ("behaviour", "status", "reason", "repair"),
    [
        (lb.fenced_json(), "ok", None, "json_in_fence"),
        (lb.prose_json(), "ok", None, "json_in_prose"),
        (lb.scores_as_strings(), "ok", None, "score_string"),
        (lb.invalid_json(), "parse_error", "invalid_json", None),
        (lb.missing_aspect(), "parse_error", "missing_aspect", None),
        (lb.score_out_of_range(), "parse_error", "score_out_of_range", None),
        (lb.refusal(), "parse_error", "refusal", None),
        (lb.refusal_field(), "parse_error", "refusal", None),
        (lb.empty(), "parse_error", "empty", None),
        (lb.truncated(), "parse_error", "truncated", None),
    ],
)
def test_malformed_answers_are_repaired_or_recorded(server, small_image, behaviour, status, reason, repair):
    server.script(behaviour)
    result = judge_one(make_judge(server), make_request("r", small_image))
    assert result.status == status
    if reason:
        assert result.error.reason == reason
        assert result.attempt_log[-1].outcome == reason
        assert result.raw_text is not None  # kept for the failures page
    else:
        assert repair in result.answer.repairs


def test_parse_failures_are_retried_up_to_the_limit(server, small_image):
    server.script(lb.empty(), lb.truncated(), lb.empty())
    judge = make_judge(server, RetryPolicy(max_parse_attempts=3, backoff_base_s=0.01))
    result = judge_one(judge, make_request("r", small_image))
    assert result.status == "parse_error" and result.error.reason == "empty"
    assert result.attempts == 3


def test_api_key_is_sent_but_never_logged_or_stored(server, small_image, caplog):
    caplog.set_level(logging.DEBUG)
    server.script(lb.rate_limited(retry_after=0), lb.reject_response_format(), lb.server_error(500))
    judge = make_judge(server)
    result = judge_one(judge, make_request("r", small_image))
    assert result.ok
    assert server.chat_requests[0].authorized
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(result) and API_KEY not in repr(judge) and API_KEY not in repr(judge.config)
    assert API_KEY not in repr(vars(judge))


def test_missing_key_variable_fails_fast(monkeypatch):
    monkeypatch.delenv(API_KEY_ENV)
    with pytest.raises(RuntimeError, match=API_KEY_ENV):
        OpenAICompatibleJudge(
            OpenAIJudgeConfig(model="m", api_key_env=API_KEY_ENV, api_key_env_allowed=(API_KEY_ENV,))
        )


def test_no_key_needed_for_local_servers(server, small_image):
    judge = make_judge(server, api_key_env=None)
    assert judge_one(judge, make_request("r", small_image)).ok


def test_config_options_reach_the_request(server, small_image):
    judge = make_judge(
        server,
        max_tokens_param="max_completion_tokens",
        max_output_tokens=321,
        temperature=None,
        seed=7,
        image_detail="low",
        extra_body={"top_k": 5},
    )
    assert judge_one(judge, make_request("r", small_image)).ok
    body = server.chat_requests[0].body
    assert body["max_completion_tokens"] == 321 and "max_tokens" not in body
    assert "temperature" not in body and body["seed"] == 7 and body["top_k"] == 5
    assert body["messages"][1]["content"][2]["image_url"]["detail"] == "low"


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": formatdate(1000.0, usegmt=True)}, now=990.0) == 10.0
    assert parse_retry_after({"retry-after": formatdate(1000.0, usegmt=True)}, now=2000.0) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None
