"""The client address behind trusted proxies, and the backoff counters every limiter uses."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import RequestFactory

from core.ratelimit import Backoff, client_address


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        ([], "198.51.100.7", "203.0.113.9", "198.51.100.7"),  # no proxy configured: the header is ignored
        (["10.0.0.2"], "198.51.100.7", "203.0.113.9", "198.51.100.7"),  # not from the proxy: ignored
        (["10.0.0.2"], "10.0.0.2", "203.0.113.9", "203.0.113.9"),
        (["10.0.0.2"], "10.0.0.2", "1.2.3.4, 203.0.113.9", "203.0.113.9"),  # client-written hop ignored
        (["10.0.0.0/8"], "10.0.0.2", "203.0.113.9, 10.1.1.1", "203.0.113.9"),  # two trusted hops
        (["10.0.0.2"], "10.0.0.2", "", "10.0.0.2"),
        (["10.0.0.2"], "10.0.0.2", "not-an-address", "10.0.0.2"),
        (["10.0.0.2"], "10.0.0.2", "[2001:db8::1]:443", "2001:db8::1"),
        (["10.0.0.2"], "10.0.0.2", "203.0.113.9:51234", "203.0.113.9"),
        ([], "", "", "unknown"),
    ],
)
def test_client_address(settings, trusted, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_backoff_lets_free_attempts_through_then_one_per_delay():
    cache.clear()
    policy = Backoff("t", free=3, window_s=60, base_s=30, max_s=120)
    assert [policy.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert policy.take("k") == 0.0  # the first attempt past the free ones takes the gate
    waits = [policy.take("k") for _ in range(5)]
    assert all(25 <= w <= 30 for w in waits)
    assert policy.count("k") == 4  # refused attempts are not counted
    assert [policy.delay_s(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 120]
    policy.clear("k")
    assert policy.take("k") == 0.0
