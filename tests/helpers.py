"""Helpers shared by tests: waiting for a condition, reading a job row afresh."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from core.models import Job

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05) -> T:
    """Poll `predicate` until it returns something truthy (returned); AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def fresh(job_id: int) -> Job:
    """The job row as the database has it now."""
    return Job.objects.get(pk=job_id)
