"""Judge over any OpenAI-compatible Chat Completions endpoint (OpenAI, Azure OpenAI, vLLM, Ollama, …).

The API key is read from the environment variable named in the config when the HTTP client is created;
it is never stored on the judge, logged, or put in a result.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import httpx2
import openai

from pipeline.mllm.calls import (
    AttemptRecord,
    CallError,
    CallRequest,
    CallResult,
    CallStatus,
    estimate_tokens,
)
from pipeline.mllm.parsing import AnswerParseError, parse_answer
from pipeline.mllm.providers.base import CallTracker
from pipeline.mllm.providers.openai_client import (
    DEFAULT_API_KEY_ENV_NAMES,
    api_key_from_env,
    openai_client,
)
from pipeline.mllm.providers.retry import RetryPolicy, parse_retry_after
from pipeline.mllm.schema import ParsedAnswer

log = logging.getLogger(__name__)
_PURPOSE = "the judge's API key"


@dataclass(frozen=True, slots=True)
class OpenAIJudgeConfig:
    """How to reach one OpenAI-compatible model. Holds the *name* of the key's variable, never the key.

    ``api_key_env=None`` sends no real key (for local servers); a named variable must be one of
    ``api_key_env_allowed`` (the operator's declared key variables). ``max_tokens_param`` is
    ``"max_tokens"`` for most servers; OpenAI's reasoning models need ``"max_completion_tokens"``.
    ``structured_output=False`` never asks for a JSON-schema response format and always spells the schema
    out in the prompt. After ``timeout_s`` an attempt counts as timed out and the call is retried, but
    the request stays open ``late_reply_grace_s`` longer so that a late reply's usage (billed by the
    provider) is still recorded; 0 closes it at the timeout.
    """

    model: str
    base_url: str | None = None
    api_key_env: str | None = "OPENAI_API_KEY"
    api_key_env_allowed: tuple[str, ...] = DEFAULT_API_KEY_ENV_NAMES
    temperature: float | None = 0.0
    max_output_tokens: int = 1024
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    timeout_s: float = 60.0
    late_reply_grace_s: float = 30.0
    image_detail: Literal["auto", "low", "high"] | None = None
    structured_output: bool = True
    seed: int | None = None
    extra_body: dict[str, Any] | None = field(default=None, hash=False)


class OpenAICompatibleJudge:
    """Judge calling ``chat.completions.create`` with our own retries and a JSON-schema answer format.

    If the server rejects ``response_format`` (HTTP 400 naming response_format/json_schema), the judge
    switches to plain-JSON instructions for this and every later call, and says so in the log once.

    The HTTP client is created in, and reused by, the event loop of the batch that runs the judge; use a
    judge in one batch at a time (a later batch gets a fresh client, the earlier one is closed by
    ``aclose``).
    """

    provider = "openai"
    needs_pixels = True

    def __init__(
        self, config: OpenAIJudgeConfig, retry: RetryPolicy | None = None, *, seed: int | None = None
    ) -> None:
        # Fail now, not at the first call (the client checks the name again when it is made).
        api_key_from_env(config.api_key_env, allowed_names=config.api_key_env_allowed, purpose=_PURPOSE)
        self.config = config
        self.model = config.model
        self.retry = retry or RetryPolicy()
        self.structured = config.structured_output
        self._rng = random.Random(seed)
        self._client: openai.AsyncOpenAI | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"OpenAICompatibleJudge(model={self.model!r}, base_url={self.config.base_url!r})"

    def estimate_tokens(self, request: CallRequest) -> int:
        """Rough tokens of one call, for rate limits."""
        return estimate_tokens(request, max_output_tokens=self.config.max_output_tokens)

    def _get_client(self) -> openai.AsyncOpenAI:
        # An httpx client belongs to the event loop it first ran in; each batch runs its own loop.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = openai_client(
                base_url=self.config.base_url,
                api_key_env=self.config.api_key_env,
                api_key_env_allowed=self.config.api_key_env_allowed,
                timeout_s=self.config.timeout_s,
                max_retries=0,  # we retry ourselves, with Retry-After and parse-failure accounting
                asynchronous=True,
                purpose=_PURPOSE,
            )
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client of the current loop."""
        if self._client is not None:
            client, self._client, self._client_loop = self._client, None, None
            await client.close()

    def request_body(self, request: CallRequest, structured: bool) -> dict[str, Any]:
        """The Chat Completions body of one call (also one line of a Batch API file)."""
        messages = request.messages(structured=structured)
        if self.config.image_detail is not None:
            for part in messages[-1]["content"]:
                if part["type"] == "image_url":
                    part["image_url"]["detail"] = self.config.image_detail
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            self.config.max_tokens_param: self.config.max_output_tokens,
        }
        if self.config.temperature is not None:
            body["temperature"] = self.config.temperature
        if self.config.seed is not None:
            body["seed"] = self.config.seed
        if self.config.extra_body:
            body.update(self.config.extra_body)
        if structured:
            body["response_format"] = request.answer_spec().response_format()
        return body

    async def judge(self, request: CallRequest) -> CallResult:
        """Call the endpoint until an answer parses or the retry policy gives up; never raises.

        Every reply is classified and kept in the attempt log (status, latency, tokens, raw text). A 200
        whose body is not a chat completion (``invalid_response``) or carries an error object
        (``error_response``) is a transport failure and retried like a 5xx, with the server's text kept.
        Replies that arrive after the client's timeout, within ``late_reply_grace_s``, are awaited
        before the call ends so that their tokens count (the provider bills them)."""
        client = self._get_client()
        tracker = CallTracker(request=request, model=self.model, provider=self.provider)
        late: list[_LateReply] = []
        try:
            status, answer, error = await self._attempts(client, request, tracker, late)
            await _collect_late(late, tracker)
        except asyncio.CancelledError:
            for pending in late:
                pending.task.cancel()
            raise
        return tracker.finish(status, answer=answer, error=error)

    async def _attempts(
        self,
        client: openai.AsyncOpenAI,
        request: CallRequest,
        tracker: CallTracker,
        late: list[_LateReply],
    ) -> tuple[CallStatus, ParsedAnswer | None, CallError | None]:
        spec = request.answer_spec()
        transport_failures = parse_failures = 0
        wait = 0.0
        while True:
            structured = self.structured
            body = self.request_body(request, structured)
            reply = await self._send(client, body, late, attempt_index=len(tracker.attempts))
            if reply.reason is not None:  # no usable completion: a transport failure of some kind
                if (
                    structured
                    and reply.http_status == 400
                    and reply.exc is not None
                    and _rejects_response_format(reply.exc)
                ):
                    if self.structured:  # calls in flight may all hit this; say it once
                        log.warning(
                            "%s rejected response_format; using plain-JSON prompts from now on", self.model
                        )
                    self.structured = False
                    tracker.record(reply.attempt("response_format_rejected", wait, structured))
                    wait = 0.0
                    continue
                tracker.record(reply.attempt(reply.reason, wait, structured), raw_text=reply.text)
                transport_failures += 1
                if not reply.retryable or len(tracker.attempts) >= self.retry.max_attempts:
                    return "api_error", None, CallError(reason=reply.reason, message=reply.message)
                wait = self.retry.backoff(transport_failures, self._rng, parse_retry_after(reply.headers))
                log.debug("call %s: %s, retrying in %.2fs", request.key, reply.reason, wait)
                await asyncio.sleep(wait)
                continue

            transport_failures = 0
            text, finish_reason, refusal = reply.choice
            error: AnswerParseError | None = None
            answer: ParsedAnswer | None = None
            try:
                answer = parse_answer(text, spec, finish_reason=finish_reason, refusal=refusal)
            except AnswerParseError as exc:
                error = exc
            attempt = reply.attempt("ok" if error is None else error.reason.value, wait, structured)
            tracker.record(
                replace(
                    attempt,
                    raw_text=text if text is not None else refusal,
                    finish_reason=finish_reason,
                    message=error.message if error is not None else None,
                    repairs=answer.repairs if answer is not None else (),
                ),
                raw_text=text if text is not None else refusal,
            )
            wait = 0.0
            if error is None:
                return "ok", answer, None
            parse_failures += 1
            if (
                parse_failures >= self.retry.max_parse_attempts
                or len(tracker.attempts) >= self.retry.max_attempts
            ):
                return "parse_error", None, CallError(reason=error.reason.value, message=error.message)

    async def _send(
        self, client: openai.AsyncOpenAI, body: dict[str, Any], late: list[_LateReply], *, attempt_index: int
    ) -> _Reply:
        """One request, classified. After ``timeout_s`` the client stops waiting (a timeout), but the request
        stays open ``late_reply_grace_s`` longer in the background, to learn what a late reply cost."""
        timeout = self.config.timeout_s
        grace = max(0.0, self.config.late_reply_grace_s)
        started = time.perf_counter()
        # client.post is the SDK's documented way to send a raw body. We skip chat.completions.create
        # because its typed-params transform walks every message part and the schema (~1 ms of CPU per
        # call); our body is plain JSON already. cast_to=Response: we read the body ourselves, so a 200
        # that is not a chat completion is classified here instead of escaping as a decode error.
        post = client.post(
            "/chat/completions", body=body, cast_to=httpx2.Response, options={"timeout": timeout + grace}
        )
        task: asyncio.Task[httpx2.Response] = asyncio.ensure_future(post)
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout if grace else None)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            late.append(_LateReply(task, attempt_index, started))
            return _Reply(
                latency_s=time.perf_counter() - started,
                reason="timeout",
                retryable=True,
                message=f"no reply within the client's timeout of {timeout:g} s",
                usage_known=False,
            )
        return _reply_from(task, started)


@dataclass(slots=True)
class _LateReply:
    """A request the client stopped waiting for, still open to learn what its reply cost."""

    task: asyncio.Task[httpx2.Response]
    attempt_index: int
    started: float


@dataclass(slots=True)
class _Reply:
    """One request's outcome: a usable completion (``reason`` None) or why not, with what the server said."""

    latency_s: float
    reason: str | None = None
    retryable: bool = False
    message: str = ""
    http_status: int | None = None
    text: str | None = None
    headers: Any = None
    exc: openai.APIError | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_known: bool = True
    choice: tuple[str | None, str | None, str | None] = (None, None, None)

    def attempt(self, outcome: str, waited: float, structured: bool) -> AttemptRecord:
        """The attempt-log entry of this reply."""
        return AttemptRecord(
            outcome,
            self.latency_s,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            http_status=self.http_status,
            waited_before_s=waited,
            structured=structured,
            raw_text=_bounded(self.text),
            message=self.message or None,
            usage_known=self.usage_known,
        )


def _reply_from(task: asyncio.Task[httpx2.Response], started: float) -> _Reply:
    """Classify a finished request: an SDK error, a body that is not a completion, or a completion."""
    latency = time.perf_counter() - started
    try:
        response = task.result()
    except openai.APIError as exc:
        reason, status, retryable = _classify(exc)
        response_obj = getattr(exc, "response", None)
        return _Reply(
            latency_s=latency,
            reason=reason,
            retryable=retryable,
            message=_describe(exc),
            http_status=status,
            text=_error_text(exc),
            headers=getattr(response_obj, "headers", None),
            exc=exc,
            # No reply (timeout, dropped connection): the request may have been billed, unseen.
            usage_known=status is not None,
        )
    except Exception as exc:  # noqa: BLE001 - a client bug must cost one call, with its attempts kept
        log.exception("unexpected error from the OpenAI client")
        return _Reply(
            latency_s=latency,
            reason="internal_error",
            message=f"{type(exc).__name__}: {exc}"[:1000],
            usage_known=False,
        )
    text = response.text
    status = response.status_code
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return _Reply(
            latency_s=latency,
            reason="invalid_response",
            retryable=True,
            message=f"HTTP {status} with a body that is not a JSON object: {_snippet(text)}",
            http_status=status,
            text=text,
            usage_known=False,  # no usage in such a body; the provider may still have billed it
        )
    prompt_tokens, completion_tokens, has_usage = _usage(data)
    if not isinstance(data.get("choices"), list):
        error = data.get("error")
        if error is not None:
            detail = error.get("message") if isinstance(error, dict) else None
            reason, message = "error_response", f"HTTP {status} with an error: {detail or _snippet(text)}"
        else:
            reason, message = "invalid_response", f"HTTP {status} without choices: {_snippet(text)}"
        return _Reply(
            latency_s=latency,
            reason=reason,
            retryable=True,
            message=message,
            http_status=status,
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage_known=has_usage,
        )
    return _Reply(
        latency_s=latency,
        http_status=status,
        text=text,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        usage_known=has_usage,
        choice=_first_choice(data),
    )


async def _collect_late(late: list[_LateReply], tracker: CallTracker) -> None:
    """Wait for replies the client stopped waiting for (each bounded by its request's own timeout) and put
    their usage into the attempts they belong to; the ones that never come stay 'usage unknown'."""
    for pending in late:
        try:
            await asyncio.wait({pending.task})
        except asyncio.CancelledError:
            pending.task.cancel()
            raise
        reply = _reply_from(pending.task, pending.started)
        if reply.reason == "timeout" or reply.reason == "connection" or reply.reason == "internal_error":
            continue  # no reply at all: what it cost stays unknown
        index = pending.attempt_index
        tracker.attempts[index] = replace(
            tracker.attempts[index],
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            usage_known=reply.usage_known,
            late_reply_s=reply.latency_s,
            http_status=reply.http_status,
            raw_text=_bounded(reply.text),
        )


def _usage(data: dict[str, Any]) -> tuple[int, int, bool]:
    """(prompt tokens, completion tokens, whether the body said) from a completion-like body."""
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return 0, 0, False
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), True


def _first_choice(data: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(content, finish_reason, refusal) of the first choice; all None if the server sent no choice."""
    choices = data.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return None, None, None
    choice = choices[0]
    message = choice.get("message") or {}
    return message.get("content"), choice.get("finish_reason"), message.get("refusal")


def _snippet(text: str | None, limit: int = 300) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[:limit] + "…"


def _bounded(text: str | None, limit: int = 8000) -> str | None:
    return None if text is None else text[:limit]


def _error_text(exc: openai.APIError) -> str | None:
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            return str(response.text)
        except Exception:  # noqa: BLE001 - a streamed or closed body: fall back to what the SDK kept
            pass
    return None if exc.body is None else json.dumps(exc.body, default=str)


def _classify(exc: openai.APIError) -> tuple[str, int | None, bool]:
    """(reason, HTTP status, retryable) for an SDK error."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", None, True
    if isinstance(exc, openai.APIConnectionError):
        return "connection", None, True
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 429:
            return "rate_limited", status, True
        if status >= 500:
            return "server_error", status, True
        if status in (408, 409):
            return "http_error", status, True
        if status in (401, 403):
            return "auth", status, False
        if status == 400:
            return "bad_request", status, False
        return "http_error", status, False
    # A reply the SDK could not read (APIResponseValidationError): the server's fault, worth a retry.
    return "invalid_response", None, True


def _rejects_response_format(exc: openai.APIError) -> bool:
    text = f"{exc.message} {exc.body}".lower()
    return "response_format" in text or "json_schema" in text


def _describe(exc: openai.APIError) -> str:
    # The SDK's message holds the server's error text; it never contains our key.
    return f"{type(exc).__name__}: {exc.message}"[:1000]
