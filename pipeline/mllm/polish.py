"""Prompt polishing with a text LLM behind an OpenAI-compatible endpoint: the request and the answer check.

As in VisionPrefer, raw prompts are rewritten to be clear and grammatical with the same content, and the
model says whether a prompt asks for unsafe content. Retries: the OpenAI SDK retries 408/409/429/5xx and
connection errors with exponential backoff and honours Retry-After (``max_retries`` = max_attempts - 1);
an answer that is not the JSON we asked for is asked once more.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal

from pipeline.mllm.providers.openai_client import DEFAULT_API_KEY_ENV_NAMES, openai_client

MAX_POLISHED_CHARS = 2000
SYSTEM_PROMPT = (
    "You rewrite prompts for a text-to-image model. Make the prompt clear, fluent and grammatical "
    "English, keeping exactly the same content: the same objects, counts, attributes, relations and "
    "style. Do not add details. Also say whether the prompt asks for unsafe content (sexual, violent, "
    "disturbing, hateful or biased). Answer with one JSON object and nothing else: "
    '{"polished": "<the rewritten prompt>", "unsafe": true or false}'
)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class PolishAnswerError(ValueError):
    """The model's answer is not the JSON object we asked for."""


@dataclass(frozen=True)
class PolishConfig:
    """How to reach the text LLM; holds the *name* of the key's environment variable, never the key."""

    model: str
    base_url: str = ""
    api_key_env: str = ""
    #: Variables declared as model API keys; `api_key_env` must be one of them.
    api_key_env_allowed: tuple[str, ...] = DEFAULT_API_KEY_ENV_NAMES
    temperature: float = 0.0
    timeout_s: float = 60.0
    max_attempts: int = 4
    concurrency: int = 4
    price_per_1k_prompt_tokens: Decimal = Decimal("0")
    price_per_1k_completion_tokens: Decimal = Decimal("0")


@dataclass(frozen=True)
class PolishAnswer:
    """A validated answer."""

    polished: str
    unsafe: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0


def polish_answer_parse(content: str | None) -> tuple[str, bool]:
    """Validate the model's answer: a JSON object with a non-empty "polished" string and a boolean "unsafe"."""
    if not content or not content.strip():
        raise PolishAnswerError("empty answer")
    match = _JSON_OBJECT.search(content)  # tolerate ```json fences and a sentence around the object
    if match is None:
        raise PolishAnswerError(f"no JSON object in the answer: {content[:120]!r}")
    try:
        document = json.loads(match.group(0))
    except ValueError as exc:
        raise PolishAnswerError(f"the answer is not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise PolishAnswerError("the answer is not a JSON object")
    polished = document.get("polished")
    if not isinstance(polished, str) or not polished.strip():
        raise PolishAnswerError('"polished" is missing or not a non-empty string')
    if len(polished) > MAX_POLISHED_CHARS:
        raise PolishAnswerError(
            f'"polished" has {len(polished):,} characters; the limit is {MAX_POLISHED_CHARS:,}'
        )
    unsafe = document.get("unsafe")
    if not isinstance(unsafe, bool):
        raise PolishAnswerError('"unsafe" is missing or not true/false')
    return " ".join(polished.split()), unsafe


class PromptPolisher:
    """Calls the LLM for one prompt at a time (thread-safe: the SDK client is shared by worker threads)."""

    def __init__(self, config: PolishConfig) -> None:
        self.config = config
        self.client = openai_client(
            base_url=config.base_url,
            api_key_env=config.api_key_env,
            api_key_env_allowed=config.api_key_env_allowed,
            timeout_s=config.timeout_s,
            max_retries=max(0, config.max_attempts - 1),
            purpose="the LLM's API key",
        )

    def polish(self, text: str) -> PolishAnswer:
        """Ask for a rewrite of `text`; ask once more if the answer does not validate."""
        tokens = [0, 0]
        error: PolishAnswerError | None = None
        for _ in range(2):
            completion = self.client.chat.completions.create(
                model=self.config.model,
                temperature=self.config.temperature,
                messages=[
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": f"Prompt: {text}"},
                ],
            )
            if completion.usage is not None:
                tokens[0] += completion.usage.prompt_tokens
                tokens[1] += completion.usage.completion_tokens
            content = completion.choices[0].message.content if completion.choices else None
            try:
                polished, unsafe = polish_answer_parse(content)
            except PolishAnswerError as exc:
                error = exc
                continue
            return PolishAnswer(polished, unsafe, *tokens)
        assert error is not None
        error.args = (f"{error} (asked twice)",)
        raise error

    def cost(self, answer: PolishAnswer) -> Decimal:
        """Dollars an answer cost at the configured prices."""
        return (
            Decimal(answer.prompt_tokens) * self.config.price_per_1k_prompt_tokens
            + Decimal(answer.completion_tokens) * self.config.price_per_1k_completion_tokens
        ) / 1000


def describe_error(exc: BaseException) -> str:
    """One line for the job log: the HTTP status and the SDK's message (which never holds the key)."""
    status = getattr(exc, "status_code", None)
    prefix = f"HTTP {status}: " if status else ""
    return f"{prefix}{type(exc).__name__}: {exc}"[:500]
