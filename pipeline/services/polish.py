"""Prompt polishing, as in VisionPrefer: a text LLM rewrites raw prompts to be clear and grammatical.

The raw prompt is kept; the rewrite is a new Prompt (source "polished", `polished_from` = the raw one)
and the raw prompt's `meta["polish"]` records which prompt holds its polished text (itself, when the
model changed nothing). Either link makes a raw prompt "done", so a re-run or a resumed job asks the
model only about prompts not yet polished.

Configuration, in the job's params: `ai_config_id` names an AIJudgeConfig with provider "openai" (its
base_url, model, api_key_env, temperature, timeout, max_attempts, concurrency and prices are used), and
any of `base_url`, `model`, `api_key_env` given in the params override it, so a polish job can also run
without a judge configuration. The API key is read from the environment variable *named* there when
the job starts: it is never stored, logged or put in a result.

Retries: the OpenAI SDK retries 408/409/429/5xx and connection errors with exponential backoff and
honours Retry-After (`max_retries` = max_attempts - 1). An answer that is not the JSON we asked for is
asked once more. A prompt that still fails is recorded in the job log and result and the job goes on;
only a job where every prompt failed is marked failed (that is a configuration problem).
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction

from annotate.models import Campaign, Prompt
from annotate.services.prompts import prompt_get_or_create
from pipeline.jobs import JobContext, job_create
from pipeline.models import ENV_VAR_NAME_MESSAGE, ENV_VAR_NAME_RE, AIJudgeConfig, Job

POLISH_SOURCE = "polished"
MAX_POLISHED_CHARS = 2000
MAX_FAILURES_IN_RESULT = 100
SYSTEM_PROMPT = (
    "You rewrite prompts for a text-to-image model. Make the prompt clear, fluent and grammatical "
    "English, keeping exactly the same content: the same objects, counts, attributes, relations and "
    "style. Do not add details. Also say whether the prompt asks for unsafe content (sexual, violent, "
    "disturbing, hateful or biased). Answer with one JSON object and nothing else: "
    '{"polished": "<the rewritten prompt>", "unsafe": true or false}'
)
_NO_KEY = "not-needed"  # local servers (vLLM, Ollama) ignore the key, but the SDK insists on one
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class PolishAnswerError(ValueError):
    """The model's answer is not the JSON object we asked for."""


@dataclass(frozen=True)
class PolishConfig:
    """How to reach the text LLM; holds the *name* of the key's environment variable, never the key."""

    model: str
    base_url: str = ""
    api_key_env: str = ""
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


def polish_config_from_params(params: dict[str, Any]) -> PolishConfig:
    """The LLM configuration of a polish job: an AIJudgeConfig row, overridden by explicit params."""
    fields: dict[str, Any] = {}
    if params.get("ai_config_id"):
        judge = AIJudgeConfig.objects.get(pk=params["ai_config_id"])
        if judge.provider != AIJudgeConfig.Provider.OPENAI:
            raise ValueError(
                f"AI configuration {judge.name!r} uses provider {judge.provider!r}; polishing needs an "
                "OpenAI-compatible endpoint (provider 'openai')"
            )
        fields = {
            "model": judge.model,
            "base_url": judge.base_url,
            "api_key_env": judge.api_key_env,
            "temperature": judge.temperature,
            "timeout_s": judge.timeout_s,
            "max_attempts": judge.max_attempts,
            "concurrency": judge.concurrency,
            "price_per_1k_prompt_tokens": judge.price_per_1k_prompt_tokens,
            "price_per_1k_completion_tokens": judge.price_per_1k_completion_tokens,
        }
    for name in ("model", "base_url", "api_key_env"):
        if params.get(name):
            fields[name] = params[name]
    if fields.get("api_key_env") and not ENV_VAR_NAME_RE.match(fields["api_key_env"]):
        raise ValueError(ENV_VAR_NAME_MESSAGE)  # never echo the value: it may be a pasted key
    if not fields.get("model"):
        raise ValueError("a polish job needs a model: give ai_config_id or model (and base_url)")
    return PolishConfig(**fields)


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
        import openai  # the SDK is only needed where polishing runs

        api_key = _NO_KEY
        if config.api_key_env:
            api_key = os.environ.get(config.api_key_env, "")
            if not api_key:
                raise RuntimeError(
                    f"environment variable {config.api_key_env} (the LLM's API key) is not set"
                )
        self.config = config
        self.client = openai.OpenAI(
            base_url=config.base_url or None,
            api_key=api_key,
            timeout=config.timeout_s,
            max_retries=max(0, config.max_attempts - 1),
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


def _describe(exc: BaseException) -> str:
    # SDK errors carry the status and the server's message, never the key.
    status = getattr(exc, "status_code", None)
    prefix = f"HTTP {status}: " if status else ""
    return f"{prefix}{type(exc).__name__}: {exc}"[:500]


def prompts_to_polish(*, params: dict[str, Any]) -> list[Prompt]:
    """The raw prompts a polish job covers (explicit ids or a campaign's), minus those already polished."""
    prompts = Prompt.objects.filter(polished_from__isnull=True).exclude(source=POLISH_SOURCE)
    if params.get("prompt_ids"):
        prompts = prompts.filter(pk__in=params["prompt_ids"])
    elif params.get("campaign_id"):
        prompts = prompts.filter(campaigns=params["campaign_id"])
    else:
        raise ValueError("a polish job needs campaign_id or prompt_ids")
    return list(prompts.order_by("pk"))


def _is_done(prompt: Prompt) -> bool:
    return bool((prompt.meta or {}).get("polish", {}).get("prompt_id"))


def polish_record(
    *, raw: Prompt, answer: PolishAnswer, model: str, campaign: Campaign | None, replace: bool
) -> Prompt:
    """Store one rewrite: the polished prompt linked to its raw one, in one transaction."""
    with transaction.atomic():
        raw = Prompt.objects.select_for_update().get(pk=raw.pk)
        if _is_done(raw):  # another attempt got here first
            return Prompt.objects.get(pk=raw.meta["polish"]["prompt_id"])
        polished, created = prompt_get_or_create(
            text=answer.polished, source=POLISH_SOURCE, polished_from=raw, is_unsafe=answer.unsafe
        )
        if not created and answer.unsafe and not polished.is_unsafe:
            Prompt.objects.filter(pk=polished.pk).update(is_unsafe=True)
        raw.meta = {
            **(raw.meta or {}),
            "polish": {"prompt_id": polished.pk, "model": model, "unchanged": polished.pk == raw.pk},
        }
        raw.is_unsafe = raw.is_unsafe or answer.unsafe
        raw.save(update_fields=["meta", "is_unsafe"])
        if campaign is not None and polished.pk != raw.pk:
            campaign.prompts.add(polished)
            if replace:
                campaign.prompts.remove(raw)
    return polished


def polish_job(ctx: JobContext) -> dict[str, Any]:
    """Job handler: params campaign_id or prompt_ids, ai_config_id and/or base_url/model/api_key_env, replace."""
    config = polish_config_from_params(ctx.params)
    campaign_id = ctx.params.get("campaign_id")
    campaign = Campaign.objects.filter(pk=campaign_id).first() if campaign_id else None
    replace = bool(ctx.params.get("replace_in_campaign", False))
    prompts = prompts_to_polish(params=ctx.params)
    has_version = set(
        Prompt.objects.filter(polished_from__in=prompts).values_list("polished_from_id", flat=True)
    )
    todo = [p for p in prompts if not _is_done(p) and p.pk not in has_version]
    skipped = len(prompts) - len(todo)
    ctx.set_progress(skipped, total=len(prompts))
    polisher = PromptPolisher(config)
    ctx.log(f"polishing {len(todo)} prompts with {config.model} ({skipped} already polished)")
    polished = unchanged = unsafe = 0
    failures: list[dict[str, Any]] = []
    # The HTTP calls run in threads; every database write stays in this thread.
    chunk = max(1, config.concurrency) * 4
    with ThreadPoolExecutor(max_workers=max(1, config.concurrency)) as pool:
        for start in range(0, len(todo), chunk):
            ctx.check_cancelled()
            batch = todo[start : start + chunk]
            futures = [pool.submit(polisher.polish, raw.text) for raw in batch]
            for raw, future in zip(batch, futures, strict=True):
                try:
                    answer = future.result()
                except Exception as exc:  # noqa: BLE001 - one prompt's failure must not stop the job
                    message = _describe(exc)
                    failures.append({"prompt_id": raw.pk, "error": message})
                    ctx.log(f"prompt {raw.pk}: failed: {message}")
                    ctx.advance()
                    continue
                ctx.add_cost(polisher.cost(answer))
                result = polish_record(
                    raw=raw, answer=answer, model=config.model, campaign=campaign, replace=replace
                )
                unchanged += int(result.pk == raw.pk)
                polished += int(result.pk != raw.pk)
                unsafe += int(answer.unsafe)
                ctx.advance()
    ctx.log(f"polished {polished}, unchanged {unchanged}, unsafe {unsafe}, failed {len(failures)}")
    if todo and len(failures) == len(todo):
        raise RuntimeError(f"every prompt failed; the first error: {failures[0]['error']}")
    return {
        "polished": polished,
        "unchanged": unchanged,
        "unsafe": unsafe,
        "skipped": skipped,
        "failed": len(failures),
        "failures": failures[:MAX_FAILURES_IN_RESULT],
    }


def polish_start(
    *,
    campaign: Campaign | None = None,
    prompt_ids: list[int] | None = None,
    ai_config: AIJudgeConfig | None = None,
    base_url: str = "",
    model: str = "",
    api_key_env: str = "",
    replace_in_campaign: bool = False,
    created_by: Any = None,
) -> Job:
    """Start a polish job on the ai queue for a campaign's prompts or the given prompts."""
    if campaign is None and not prompt_ids:
        raise ValueError("choose a campaign or prompts to polish")
    params: dict[str, Any] = {"replace_in_campaign": replace_in_campaign}
    if campaign is not None:
        params["campaign_id"] = campaign.pk
    if prompt_ids:
        params["prompt_ids"] = list(prompt_ids)
    if ai_config is not None:
        params["ai_config_id"] = ai_config.pk
    params.update(
        {k: v for k, v in {"base_url": base_url, "model": model, "api_key_env": api_key_env}.items() if v}
    )
    polish_config_from_params(params)  # fail now, in the form, rather than in the worker
    title = f"Polish prompts of {campaign.name}" if campaign else f"Polish {len(prompt_ids or [])} prompts"
    return job_create(
        kind=Job.Kind.POLISH, params=params, campaign=campaign, created_by=created_by, title=title
    )
