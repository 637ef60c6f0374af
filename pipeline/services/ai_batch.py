"""AI annotation through the OpenAI Batch API: upload a JSONL of requests, create a batch, poll, ingest.

For very large runs (half the price at OpenAI, a 24-hour window). Same work list and the same recording
as online execution (:mod:`pipeline.services.annotation`), so results land in AICall and Judgment rows
with the same idempotency. The job stays resumable: the input file id and then the batch id are saved in
``job.params["batch"]`` as soon as the server returns them, so a re-run polls the existing batch instead
of creating a new one. (A crash in the instant between creating the batch and saving its id would make
the re-run submit a second batch; its answers would still never duplicate a judgment.)

Lines that come back with an error, and requests the batch never answered (expired or cancelled), are
recorded as failed calls with a reason; a new job with selection "unlabelled" sends them again.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from annotate.models import Campaign
from pipeline.jobs import JobContext
from pipeline.mllm import (
    AnswerParseError,
    AttemptRecord,
    CallError,
    CallRequest,
    CallResult,
    ParsedAnswer,
    parse_answer,
)
from pipeline.models import ENV_VAR_NAME_MESSAGE, ENV_VAR_NAME_RE, AIJudgeConfig, Job
from pipeline.services.annotation import DEFAULT_MAX_OUTPUT_TOKENS, AnnotationRecorder, annotation_requests

ENDPOINT = "/v1/chat/completions"
FINAL_STATES = ("completed", "failed", "expired", "cancelled")
PROVIDER = "openai-batch"


def _client(judge_config: AIJudgeConfig) -> Any:
    import openai  # lazily: only batch jobs need the SDK's sync client

    if judge_config.api_key_env and not ENV_VAR_NAME_RE.match(judge_config.api_key_env):
        raise RuntimeError(ENV_VAR_NAME_MESSAGE)  # never echo the value: it may be a pasted key
    key = os.environ.get(judge_config.api_key_env, "") if judge_config.api_key_env else "not-needed"
    if judge_config.api_key_env and not key:
        raise RuntimeError(
            f"environment variable {judge_config.api_key_env} (the judge's API key) is not set"
        )
    return openai.OpenAI(
        base_url=judge_config.base_url or None, api_key=key, timeout=judge_config.timeout_s, max_retries=3
    )


def batch_request_body(judge_config: AIJudgeConfig, request: CallRequest) -> dict[str, Any]:
    """The Chat Completions body of one batch line (structured JSON-schema answer format)."""
    options = judge_config.options or {}
    body: dict[str, Any] = {
        "model": judge_config.model,
        "messages": request.with_encoded_images().messages(structured=True),
        options.get("max_tokens_param", "max_tokens"): int(
            options.get("max_output_tokens", DEFAULT_MAX_OUTPUT_TOKENS)
        ),
        "temperature": judge_config.temperature,
        "response_format": request.answer_spec().response_format(),
    }
    return body


def _save_state(job: Job, **state: Any) -> dict[str, Any]:
    job.refresh_from_db(fields=["params"])
    job.params = {**job.params, "batch": {**(job.params.get("batch") or {}), **state}}
    Job.objects.filter(pk=job.pk).update(params=job.params)
    return dict(job.params["batch"])


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


def batch_run(
    *,
    ctx: JobContext,
    job: Job,
    campaign: Campaign,
    judge_config: AIJudgeConfig,
    recorder: AnnotationRecorder,
) -> None:
    """Submit the job's unsent calls as one batch (or find the batch already submitted), wait, ingest."""
    client = _client(judge_config)
    # Requests are rebuilt from the rows on every run (cheap: no encoding unless a file is written),
    # because recording an answer needs its request (prompt text, answer spec).
    requests = {
        r.key: r
        for r in annotation_requests(
            job=job, campaign=campaign, judge_config=judge_config, infos=recorder.infos
        )
    }
    state = dict(job.params.get("batch") or {})
    if not state.get("batch_id"):
        if not requests:
            return
        if not state.get("input_file_id"):
            lines = [
                json.dumps(
                    {
                        "custom_id": key,
                        "method": "POST",
                        "url": ENDPOINT,
                        "body": batch_request_body(judge_config, r),
                    }
                )
                for key, r in requests.items()
            ]
            uploaded = client.files.create(
                file=("annotation.jsonl", "\n".join(lines).encode()), purpose="batch"
            )
            state = _save_state(job, input_file_id=uploaded.id, calls=len(lines))
            ctx.log(f"uploaded {len(lines)} requests as {uploaded.id}")
        batch = client.batches.create(
            input_file_id=state["input_file_id"],
            endpoint=ENDPOINT,
            completion_window="24h",
            metadata={"job_id": str(job.pk)},
        )
        state = _save_state(job, batch_id=batch.id)
        ctx.log(f"created batch {batch.id}")
    else:
        ctx.log(f"resuming batch {state['batch_id']}")
    poll_s = float((judge_config.options or {}).get("batch_poll_s", ctx.params.get("batch_poll_s", 30.0)))
    while True:
        batch = client.batches.retrieve(state["batch_id"])
        if batch.status in FINAL_STATES:
            break
        if ctx.should_stop():
            client.batches.cancel(state["batch_id"])
            ctx.check_cancelled()
        time.sleep(poll_s)
    _save_state(job, status=batch.status)
    ctx.log(f"batch {batch.id} {batch.status}")
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        for raw in client.files.content(file_id).text.splitlines():
            if not raw.strip():
                continue
            line = json.loads(raw)
            request = requests.pop(str(line.get("custom_id")), None)
            if request is not None:  # None: recorded by an earlier run of this job
                recorder.record(batch_line_result(line, request, judge_config.model))
    for request in list(requests.values()):
        reason = f"batch_{batch.status}" if batch.status != "completed" else "batch_missing"
        message = f"the batch ended {batch.status} without an answer for this request"
        if batch.errors:
            message += f": {batch.errors}"
        recorder.record(
            CallResult(
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
                model=judge_config.model,
                provider=PROVIDER,
            )
        )
