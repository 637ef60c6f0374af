"""Small job handlers that belong to no other module."""

from __future__ import annotations

import time
from typing import Any

from pipeline.jobs import JobContext


def demo_countdown(ctx: JobContext) -> dict[str, Any]:
    """A job that counts `steps` units, sleeping between them; fails at `fail_at` if given.

    It exists to show and test the job machinery (progress, cancel, failure) without any model.
    """
    steps = int(ctx.params.get("steps", 20))
    sleep_s = float(ctx.params.get("sleep_s", 0.25))
    fail_at = ctx.params.get("fail_at")
    ctx.set_total(steps)
    for i in range(steps):
        ctx.check_cancelled()
        if fail_at is not None and i == int(fail_at):
            raise RuntimeError(f"demo job asked to fail at step {i}")
        time.sleep(sleep_s)
        ctx.advance()
    return {"steps": steps}
