"""Every reply is classified and kept (issue 17, findings 5-7): bodies that are not completions, error
objects inside a 200, late replies after the client's timeout, and what the parser repaired.

Against the real loopback server; each test checks the client's record against the server's own log.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from pipeline.mllm import loopback_server as lb
from pipeline.mllm.providers import RetryPolicy
from pipeline.mllm.tests.helpers import FAST_RETRY, make_judge, make_request

pytestmark = pytest.mark.usefixtures("api_key")

HTML = "<html><body><h1>502 Bad Gateway</h1><p>upstream went away</p></body></html>"


def judge_one(judge, request):
    async def run():
        try:
            return await judge.judge(request)
        finally:
            await judge.aclose()

    return asyncio.run(run())


def test_a_non_json_200_is_retried_then_fails_with_the_servers_text(server, small_image):
    # The first answer is billed (a parse failure), then the gateway answers HTML until attempts run out.
    server.script(lb.invalid_json(), *[lb.non_json(HTML)] * 3)
    judge = make_judge(server, RetryPolicy(max_attempts=4, max_parse_attempts=2, backoff_base_s=0.01))
    result = judge_one(judge, make_request("r", small_image))

    assert result.status == "api_error"
    assert result.error.reason == "invalid_response"
    assert "502 Bad Gateway" in result.error.message and "HTTP 200" in result.error.message
    assert result.attempts == 4 == len(server.chat_requests)
    assert [a.outcome for a in result.attempt_log] == ["invalid_json", *["invalid_response"] * 3]
    for attempt in result.attempt_log[1:]:
        assert attempt.http_status == 200 and attempt.raw_text == HTML and attempt.latency_s > 0
        assert attempt.usage_known is False  # an HTML page says nothing of tokens
    # The billed first answer's tokens are not dropped.
    assert (result.prompt_tokens, result.completion_tokens) == server.usage
    assert result.prompt_tokens > 0
    assert result.raw_text == HTML  # the last thing the server said, for the failures page


def test_a_non_json_200_then_a_good_answer_succeeds(server, small_image):
    server.script(lb.non_json("upstream timeout", content_type="text/plain"))
    result = judge_one(make_judge(server), make_request("r", small_image))
    assert result.ok, result.error
    assert [a.outcome for a in result.attempt_log] == ["invalid_response", "ok"]
    assert result.attempt_log[0].raw_text == "upstream timeout"


def test_a_cut_json_body_labelled_as_json_is_an_invalid_response(server, small_image):
    server.script(*[lb.non_json('{"id": "chatcmpl-1", "choi', content_type="application/json")] * 4)
    result = judge_one(make_judge(server), make_request("r", small_image))
    assert result.status == "api_error" and result.error.reason == "invalid_response"
    assert result.attempts == FAST_RETRY.max_attempts
    assert '{"id": "chatcmpl-1", "choi' in result.error.message


def test_an_error_object_inside_a_200_is_retried_then_fails_with_the_servers_message(server, small_image):
    server.script(*[lb.error_in_200("model overloaded")] * 4)
    result = judge_one(make_judge(server), make_request("r", small_image))
    assert result.status == "api_error"
    assert result.error.reason == "error_response"
    assert "model overloaded" in result.error.message
    assert result.attempts == FAST_RETRY.max_attempts == len(server.chat_requests)
    assert all(a.outcome == "error_response" and a.http_status == 200 for a in result.attempt_log)
    assert "model overloaded" in result.attempt_log[0].raw_text


def test_an_error_inside_a_200_then_an_answer_succeeds(server, small_image):
    server.script(lb.error_in_200("model overloaded"))
    result = judge_one(make_judge(server), make_request("r", small_image))
    assert result.ok
    assert [a.outcome for a in result.attempt_log] == ["error_response", "ok"]


def test_failed_attempts_keep_status_latency_and_raw_text(server, small_image):
    server.script(lb.server_error(503), lb.rate_limited(retry_after=0.01))
    result = judge_one(make_judge(server), make_request("r", small_image))
    assert result.ok
    first, second, third = result.attempt_log
    assert (first.outcome, first.http_status) == ("server_error", 503)
    assert "Loopback error 503" in first.raw_text and "Loopback error 503" in first.message
    assert (second.outcome, second.http_status) == ("rate_limited", 429)
    assert "Rate limit reached" in second.raw_text
    assert third.outcome == "ok" and third.raw_text.startswith('{"aspects"') and third.prompt_tokens > 0


def test_a_reply_after_the_timeout_is_awaited_and_its_tokens_count(server, small_image):
    # The first request answers after 0.6 s; the client stops waiting at 0.2 s and retries, but keeps the
    # first request open (grace 2 s), so its reply, which the provider bills, is recorded too.
    server.script(lb.slow(0.6))
    judge = make_judge(server, timeout_s=0.2, late_reply_grace_s=2.0)
    result = judge_one(judge, make_request("r", small_image))
    assert result.ok
    late, answered = result.attempt_log
    assert late.outcome == "timeout" and late.late_reply_s is not None and late.late_reply_s >= 0.55
    assert late.usage_known and late.prompt_tokens > 0 and late.http_status == 200
    assert answered.outcome == "ok"
    assert len(server.chat_requests) == 2 and all(r.delivered for r in server.chat_requests)
    assert (result.prompt_tokens, result.completion_tokens) == server.usage == server.billed_usage


def test_without_grace_a_late_reply_is_unknown_and_said_so(server, small_image):
    server.script(lb.slow(0.6))
    judge = make_judge(server, timeout_s=0.2, late_reply_grace_s=0.0)
    result = judge_one(judge, make_request("r", small_image))
    assert result.ok
    timed_out = result.attempt_log[0]
    assert timed_out.outcome == "timeout" and timed_out.usage_known is False and timed_out.prompt_tokens == 0
    # What the client knows equals what it received; the server billed one answer more, which the
    # client closed the connection on (waiting until the server has written it).
    deadline = time.monotonic() + 5
    while server.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (result.prompt_tokens, result.completion_tokens) == server.usage
    assert server.billed_usage[0] > server.usage[0]
    assert sorted(r.delivered for r in server.chat_requests) == [False, True]


def test_repairs_are_recorded_on_the_attempt(server, small_image):
    server.script(lb.fenced_json())
    result = judge_one(make_judge(server), make_request("r", small_image))
    assert result.ok
    assert result.answer.repairs == ("json_in_fence",)
    assert result.attempt_log[0].repairs == ("json_in_fence",)


def test_the_server_log_names_calls_sent_twice(server, small_image):
    server.script(lb.server_error(500))
    judge_one(make_judge(server), make_request("r", small_image))
    other = replace(make_request("s", small_image), prompt="three blue balls")
    judge_one(make_judge(server), other)
    (fingerprint, count), *rest = server.sent_twice().items()
    assert count == 2 and not rest  # the retried call, not the other one
    assert server.stats()["sent_twice"] == 1
