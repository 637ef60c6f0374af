"""The :class:`Judge` protocol every provider implements, and a helper that builds its results."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pipeline.mllm.calls import AttemptRecord, CallError, CallRequest, CallResult, CallStatus
from pipeline.mllm.parsing import AnswerParseError
from pipeline.mllm.schema import ParsedAnswer


@runtime_checkable
class Judge(Protocol):
    """Anything that answers a :class:`CallRequest` with a :class:`CallResult`.

    ``judge`` must never raise for a failed call (it returns ``status != "ok"``); the executor still
    guards against bugs. ``aclose`` releases per-event-loop resources (HTTP clients) at the end of a
    batch; the judge stays usable and re-creates them in the next batch's loop. ``needs_pixels`` False
    tells the executor not to encode images (the simulated judge never looks at them).
    """

    provider: str
    model: str
    needs_pixels: bool

    async def judge(self, request: CallRequest) -> CallResult:
        """Run one call (with the provider's own retries) and return its result."""
        ...

    async def aclose(self) -> None:
        """Release resources bound to the current event loop."""
        ...

    def estimate_tokens(self, request: CallRequest) -> int:
        """Tokens this call will probably use (prompt + answer budget), for rate limiting."""
        ...


@dataclass(slots=True)
class CallTracker:
    """Accumulates attempts of one call and turns them into a :class:`CallResult`."""

    request: CallRequest
    model: str
    provider: str
    started: float = field(default_factory=time.perf_counter)
    attempts: list[AttemptRecord] = field(default_factory=list)
    raw_text: str | None = None
    finish_reason: str | None = None

    def record(self, attempt: AttemptRecord, *, raw_text: str | None = None) -> None:
        """Add an attempt; a returned answer text replaces the previous one."""
        self.attempts.append(attempt)
        if raw_text is not None or attempt.finish_reason is not None:
            self.raw_text = raw_text
            self.finish_reason = attempt.finish_reason

    def finish(
        self,
        status: CallStatus,
        *,
        answer: ParsedAnswer | None = None,
        error: CallError | None = None,
    ) -> CallResult:
        """Close the call with its final status."""
        last = self.attempts[-1] if self.attempts else None
        return CallResult(
            request=self.request,
            status=status,
            answer=answer,
            error=error,
            raw_text=self.raw_text,
            finish_reason=self.finish_reason,
            prompt_tokens=sum(a.prompt_tokens for a in self.attempts),
            completion_tokens=sum(a.completion_tokens for a in self.attempts),
            latency_s=last.latency_s if last else 0.0,
            elapsed_s=time.perf_counter() - self.started,
            attempts=len(self.attempts),
            model=self.model,
            provider=self.provider,
            structured=last.structured if last else True,
            attempt_log=tuple(self.attempts),
        )

    def parse_failure(self, exc: AnswerParseError) -> CallResult:
        """Close the call as a parse failure."""
        return self.finish("parse_error", error=CallError(reason=exc.reason.value, message=exc.message))
