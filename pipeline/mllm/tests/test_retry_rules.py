"""The retry rules on their own: which failures are retried, how long to wait, what Retry-After means.

The loopback tests (test_openai_replies.py, test_openai_judge.py) show retries happen end to end; these pin
every branch of the rule, so a 408 that stops being retried or a cap that stops capping fails here.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx2 as httpx
import openai
import pytest

from pipeline.mllm.providers.openai_compatible import _classify
from pipeline.mllm.providers.retry import RetryPolicy, parse_retry_after

REQUEST = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


def status_error(status: int) -> openai.APIStatusError:
    return openai.APIStatusError(
        f"HTTP {status}", response=httpx.Response(status, request=REQUEST), body=None
    )


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [
        (408, "http_error", True),  # request timeout: the server asks for the request again
        (409, "http_error", True),  # conflict: OpenAI answers it for a concurrent request, worth a retry
        (429, "rate_limited", True),
        (500, "server_error", True),
        (503, "server_error", True),
        (599, "server_error", True),
        (400, "bad_request", False),
        (401, "auth", False),
        (403, "auth", False),
        (404, "http_error", False),
        (410, "http_error", False),
        (422, "http_error", False),
        (499, "http_error", False),
    ],
)
def test_status_codes_are_classified(status, reason, retryable):
    assert _classify(status_error(status)) == (reason, status, retryable)


def test_timeouts_connection_errors_and_unreadable_replies_are_retried():
    assert _classify(openai.APITimeoutError(request=REQUEST)) == ("timeout", None, True)
    assert _classify(openai.APIConnectionError(request=REQUEST)) == ("connection", None, True)
    unreadable = openai.APIResponseValidationError(response=httpx.Response(200, request=REQUEST), body="x")
    assert _classify(unreadable) == ("invalid_response", None, True)


class Fixed(random.Random):
    """A random source that always draws `value`."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_backoff_doubles_from_the_base_with_equal_jitter_and_is_capped():
    policy = RetryPolicy(backoff_base_s=0.5, backoff_max_s=3.0)
    assert [policy.backoff(n, Fixed(1.0)) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert [policy.backoff(n, Fixed(0.0)) for n in (1, 2, 3, 4)] == [0.25, 0.5, 1.0, 1.5]  # half the ceiling
    assert policy.backoff(2, Fixed(0.5)) == pytest.approx(0.75)


def test_retry_after_is_honoured_with_at_most_ten_percent_extra_and_capped():
    policy = RetryPolicy(retry_after_cap_s=60.0, backoff_max_s=1.0)
    assert policy.backoff(1, Fixed(0.0), retry_after_s=7.0) == 7.0  # not the backoff, not capped by it
    assert policy.backoff(1, Fixed(1.0), retry_after_s=7.0) == pytest.approx(7.7)
    assert policy.backoff(1, Fixed(0.0), retry_after_s=3600.0) == 60.0  # an hour becomes the cap
    assert policy.backoff(1, Fixed(1.0), retry_after_s=3600.0) == pytest.approx(66.0)
    assert policy.backoff(1, Fixed(0.5), retry_after_s=0.0) == 0.0


def test_policy_defaults_are_those_documented():
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.max_parse_attempts) == (6, 2)
    assert (policy.backoff_base_s, policy.backoff_max_s, policy.retry_after_cap_s) == (0.5, 30.0, 60.0)


def test_retry_after_headers():
    assert parse_retry_after(None) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after({"x-other": "5"}) is None
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5  # ms first
    assert parse_retry_after({"retry-after-ms": "-5"}) == 0.0
    assert parse_retry_after({"retry-after-ms": "soon", "retry-after": "9"}) == 9.0  # unreadable ms: seconds
    assert parse_retry_after({"retry-after-ms": "soon"}) is None
    assert parse_retry_after({"retry-after": "120"}) == 120.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after": "-3"}) == 0.0
    assert parse_retry_after({"retry-after": "tomorrow"}) is None


def test_retry_after_as_an_http_date_counts_from_now():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    later = format_datetime(datetime(2026, 1, 2, 3, 4, 35, tzinfo=UTC), usegmt=True)
    assert parse_retry_after({"retry-after": later}, now=now) == pytest.approx(30.0)
    assert parse_retry_after({"retry-after": later}, now=now + 100) == 0.0  # a date in the past: now
    # Without `now`, the wall clock: a date 30 s ahead of it is about 30 s away.
    ahead = format_datetime(datetime.fromtimestamp(datetime.now(UTC).timestamp() + 30, UTC), usegmt=True)
    assert 25 < parse_retry_after({"retry-after": ahead}) <= 31
