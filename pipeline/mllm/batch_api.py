"""The OpenAI Batch API protocol: request files, batch status, and result lines turned into CallResults.

For very large runs (half the price at OpenAI, a 24-hour window). The caller keeps the ids this returns
(input file, batch) so a resumed run polls the batch it already created; answers are parsed exactly like
online answers (:func:`pipeline.mllm.parse_answer`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pipeline.mllm.calls import AttemptRecord, CallError, CallRequest, CallResult
from pipeline.mllm.parsing import AnswerParseError, parse_answer
from pipeline.mllm.schema import ParsedAnswer

ENDPOINT = "/v1/chat/completions"
FINAL_STATES = ("completed", "failed", "expired", "cancelled")
PROVIDER = "openai-batch"


class BatchSession:
    """One Batch API conversation over an SDK client (``pipeline.mllm.providers.openai_client``)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def upload(self, bodies: Mapping[str, dict[str, Any]]) -> str:
        """Upload one JSONL request line per call (custom_id = the key); returns the input file id."""
        lines = [
            json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body})
            for key, body in bodies.items()
        ]
        uploaded = self.client.files.create(
            file=("annotation.jsonl", "\n".join(lines).encode()), purpose="batch"
        )
        return str(uploaded.id)

    def create(self, *, input_file_id: str, metadata: dict[str, str]) -> str:
        """Start a batch over an uploaded file; returns the batch id."""
        batch = self.client.batches.create(
            input_file_id=input_file_id, endpoint=ENDPOINT, completion_window="24h", metadata=metadata
        )
        return str(batch.id)

    def wait(self, batch_id: str, *, poll_s: float, should_stop: Callable[[], bool]) -> Any | None:
        """Poll until the batch reaches a final state and return it; None after cancelling it on request."""
        while True:
            batch = self.client.batches.retrieve(batch_id)
            if batch.status in FINAL_STATES:
                return batch
            if should_stop():
                self.client.batches.cancel(batch_id)
                return None
            time.sleep(poll_s)

    def result_lines(self, batch: Any) -> Iterator[dict[str, Any]]:
        """Every line of the batch's output and error files, parsed."""
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            for raw in self.client.files.content(file_id).text.splitlines():
                if raw.strip():
                    yield json.loads(raw)


def _error_reason(status: int | None) -> str:
    if status == 429:
        return "rate_limited"
    if status is not None and status >= 500:
        return "server_error"
    if status == 400:
        return "bad_request"
    return "http_error"


def batch_line_result(line: dict[str, Any], request: CallRequest, model: str) -> CallResult:
    """Turn one line of a batch's output or error file into a CallResult (parsed like an online answer)."""
    response = line.get("response") or {}
    status = response.get("status_code")
    body = response.get("body") or {}
    common: dict[str, Any] = {
        "request": request,
        "latency_s": 0.0,
        "elapsed_s": 0.0,
        "attempts": 1,
        "model": model,
        "provider": PROVIDER,
    }
    if line.get("error") or status != 200:
        error = line.get("error") or body.get("error") or {}
        message = f"batch line failed (HTTP {status}): {error.get('message', error)}"[:1000]
        reason = _error_reason(status)
        return CallResult(
            status="api_error",
            answer=None,
            error=CallError(reason, message),
            raw_text=json.dumps(body)[:20000] if body else None,
            finish_reason=None,
            prompt_tokens=0,
            completion_tokens=0,
            attempt_log=(AttemptRecord(reason, 0.0, http_status=status),),
            **common,
        )
    choices = body.get("choices") or [{}]
    reply = choices[0].get("message") or {}
    text, refusal = reply.get("content"), reply.get("refusal")
    finish_reason = choices[0].get("finish_reason")
    usage = body.get("usage") or {}
    prompt_tokens, completion_tokens = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
    answer: ParsedAnswer | None = None
    error_: CallError | None = None
    try:
        answer = parse_answer(text, request.answer_spec(), finish_reason=finish_reason, refusal=refusal)
    except AnswerParseError as exc:
        error_ = CallError(exc.reason.value, exc.message)
    return CallResult(
        status="ok" if error_ is None else "parse_error",
        answer=answer,
        error=error_,
        raw_text=text if text is not None else refusal,
        finish_reason=finish_reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        attempt_log=(
            AttemptRecord(
                error_.reason if error_ else "ok",
                0.0,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                http_status=200,
                finish_reason=finish_reason,
            ),
        ),
        **common,
    )


def batch_unanswered_result(
    request: CallRequest, *, batch_status: str, errors: Any, model: str
) -> CallResult:
    """The failure recorded for a request the batch ended without answering (expired, cancelled, lost)."""
    reason = f"batch_{batch_status}" if batch_status != "completed" else "batch_missing"
    message = f"the batch ended {batch_status} without an answer for this request"
    if errors:
        message += f": {errors}"
    return CallResult(
        request=request,
        status="api_error",
        answer=None,
        error=CallError(reason, message[:1000]),
        raw_text=None,
        finish_reason=None,
        prompt_tokens=0,
        completion_tokens=0,
        latency_s=0.0,
        elapsed_s=0.0,
        attempts=1,
        model=model,
        provider=PROVIDER,
    )
