"""Judge over any OpenAI-compatible Chat Completions endpoint (OpenAI, Azure OpenAI, vLLM, Ollama, …).

The API key is read from the environment variable named in the config when the HTTP client is created;
it is never stored on the judge, logged, or put in a result.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
from openai.types.chat import ChatCompletion

from pipeline.mllm.calls import AttemptRecord, CallError, CallRequest, CallResult, estimate_tokens
from pipeline.mllm.parsing import AnswerParseError, parse_answer
from pipeline.mllm.providers.base import CallTracker
from pipeline.mllm.providers.openai_client import (
    DEFAULT_API_KEY_ENV_NAMES,
    api_key_from_env,
    openai_client,
)
from pipeline.mllm.providers.retry import RetryPolicy, parse_retry_after

log = logging.getLogger(__name__)
_PURPOSE = "the judge's API key"


@dataclass(frozen=True, slots=True)
class OpenAIJudgeConfig:
    """How to reach one OpenAI-compatible model. Holds the *name* of the key's variable, never the key.

    ``api_key_env=None`` sends no real key (for local servers); a named variable must be one of
    ``api_key_env_allowed`` (the operator's declared key variables). ``max_tokens_param`` is
    ``"max_tokens"`` for most servers; OpenAI's reasoning models need ``"max_completion_tokens"``.
    ``structured_output=False`` never asks for a JSON-schema response format and always spells the schema
    out in the prompt.
    """

    model: str
    base_url: str | None = None
    api_key_env: str | None = "OPENAI_API_KEY"
    api_key_env_allowed: tuple[str, ...] = DEFAULT_API_KEY_ENV_NAMES
    temperature: float | None = 0.0
    max_output_tokens: int = 1024
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    timeout_s: float = 60.0
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
        """Call the endpoint until an answer parses or the retry policy gives up; never raises."""
        client = self._get_client()
        tracker = CallTracker(request=request, model=self.model, provider=self.provider)
        spec = request.answer_spec()
        transport_failures = parse_failures = 0
        wait = 0.0
        while True:
            structured = self.structured
            body = self.request_body(request, structured)
            started = time.perf_counter()
            try:
                # client.post is the SDK's documented way to send a raw body. We skip
                # chat.completions.create because its typed-params transform walks every message part
                # and the schema (~1 ms of CPU per call); our body is plain JSON already. Errors,
                # timeouts and response parsing are the same as create()'s.
                completion = await client.post("/chat/completions", body=body, cast_to=ChatCompletion)
            except openai.APIError as exc:
                latency = time.perf_counter() - started
                reason, status, retryable = _classify(exc)
                if structured and status == 400 and _rejects_response_format(exc):
                    if self.structured:  # calls in flight may all hit this; say it once
                        log.warning(
                            "%s rejected response_format; using plain-JSON prompts from now on", self.model
                        )
                    self.structured = False
                    tracker.record(
                        AttemptRecord(
                            "response_format_rejected", latency, http_status=400, waited_before_s=wait
                        )
                    )
                    wait = 0.0
                    continue
                tracker.record(
                    AttemptRecord(
                        reason, latency, http_status=status, waited_before_s=wait, structured=structured
                    )
                )
                transport_failures += 1
                if not retryable or len(tracker.attempts) >= self.retry.max_attempts:
                    return tracker.finish("api_error", error=CallError(reason=reason, message=_describe(exc)))
                headers = getattr(getattr(exc, "response", None), "headers", None)
                wait = self.retry.backoff(transport_failures, self._rng, parse_retry_after(headers))
                log.debug("call %s: %s, retrying in %.2fs", request.key, reason, wait)
                await asyncio.sleep(wait)
                continue

            latency = time.perf_counter() - started
            transport_failures = 0
            text, finish_reason, refusal = _first_choice(completion)
            error: AnswerParseError | None = None
            try:
                answer = parse_answer(text, spec, finish_reason=finish_reason, refusal=refusal)
            except AnswerParseError as exc:
                error = exc
            usage = completion.usage
            tracker.record(
                AttemptRecord(
                    "ok" if error is None else error.reason.value,
                    latency,
                    prompt_tokens=(usage.prompt_tokens or 0) if usage else 0,
                    completion_tokens=(usage.completion_tokens or 0) if usage else 0,
                    http_status=200,
                    finish_reason=finish_reason,
                    waited_before_s=wait,
                    structured=structured,
                ),
                raw_text=text if text is not None else refusal,
            )
            wait = 0.0
            if error is None:
                return tracker.finish("ok", answer=answer)
            parse_failures += 1
            if (
                parse_failures >= self.retry.max_parse_attempts
                or len(tracker.attempts) >= self.retry.max_attempts
            ):
                return tracker.parse_failure(error)


def _first_choice(completion: ChatCompletion) -> tuple[str | None, str | None, str | None]:
    """(content, finish_reason, refusal) of the first choice; all None if the server sent no choice."""
    if not completion.choices:
        return None, None, None
    choice = completion.choices[0]
    return choice.message.content, choice.finish_reason, getattr(choice.message, "refusal", None)


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
    # A 200 whose body the SDK could not read: a broken server, not worth hammering.
    return "protocol_error", None, False


def _rejects_response_format(exc: openai.APIError) -> bool:
    text = f"{exc.message} {exc.body}".lower()
    return "response_format" in text or "json_schema" in text


def _describe(exc: openai.APIError) -> str:
    # The SDK's message holds the server's error text; it never contains our key.
    return f"{type(exc).__name__}: {exc.message}"[:1000]
