"""Retry policy for judge calls: which failures to retry, and how long to wait before the next try."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Limits and waits for retries.

    Transport failures (429, 408/409, 5xx, timeouts, connection errors) are retried until
    ``max_attempts`` requests have been sent in total. Answers that fail to parse are asked again up to
    ``max_parse_attempts`` times (a sampled model often answers well the second time). Waits grow as
    ``backoff_base_s * 2**n`` capped at ``backoff_max_s``, with jitter so that many calls failing together
    do not retry in lockstep. A server's Retry-After is honoured, capped at ``retry_after_cap_s``.
    """

    max_attempts: int = 6
    max_parse_attempts: int = 2
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_cap_s: float = 60.0

    def backoff(self, failures: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th consecutive transport failure (1-based)."""
        if retry_after_s is not None:
            # Up to 10% extra spreads out the callers a server told to come back at the same moment.
            return min(retry_after_s, self.retry_after_cap_s) * (1 + 0.1 * rng.random())
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (failures - 1))
        return ceiling * (0.5 + 0.5 * rng.random())  # "equal jitter": never less than half the ceiling


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds a server asked us to wait: ``retry-after-ms``, or ``Retry-After`` as seconds or HTTP date."""
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
