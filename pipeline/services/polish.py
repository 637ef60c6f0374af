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

The request and the answer check are the Django-free :mod:`pipeline.mllm.polish`. A prompt that still
fails after its retries is recorded in the job log and result and the job goes on; only a job where every
prompt failed is marked failed (that is a configuration problem).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import transaction

from annotate.models import Campaign, Prompt
from annotate.services.prompts import prompt_get_or_create
from core.jobs import JobContext, job_create
from core.models import Job
from pipeline.jobs import POLISH, PolishParams
from pipeline.mllm.polish import (
    PolishAnswer,
    PolishConfig,
    PromptPolisher,
    describe_error,
)
from pipeline.mllm.providers.openai_client import key_variable_check
from pipeline.models import AIJudgeConfig, api_key_env_allowed

POLISH_SOURCE = "polished"
MAX_FAILURES_IN_RESULT = 100


def polish_config_from_params(params: PolishParams) -> PolishConfig:
    """The LLM configuration of a polish job: an AIJudgeConfig row, overridden by explicit params."""
    fields: dict[str, Any] = {}
    if params.ai_config_id:
        judge = AIJudgeConfig.objects.get(pk=params.ai_config_id)
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
        if getattr(params, name):
            fields[name] = getattr(params, name)
    allowed = api_key_env_allowed()
    if fields.get("api_key_env"):
        key_variable_check(fields["api_key_env"], allowed_names=allowed)  # never echoes a pasted key
    if not fields.get("model"):
        raise ValueError("a polish job needs a model: give ai_config_id or model (and base_url)")
    return PolishConfig(**fields, api_key_env_allowed=allowed)


def prompts_to_polish(*, params: PolishParams) -> list[Prompt]:
    """The raw prompts a polish job covers (explicit ids or a campaign's), minus those already polished."""
    prompts = Prompt.objects.filter(polished_from__isnull=True).exclude(source=POLISH_SOURCE)
    if params.prompt_ids:
        prompts = prompts.filter(pk__in=params.prompt_ids)
    elif params.campaign_id:
        prompts = prompts.filter(campaigns=params.campaign_id)
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
    """Job handler (PolishParams): rewrite each prompt not yet polished, recording failures and going on."""
    params: PolishParams = ctx.params
    config = polish_config_from_params(params)
    campaign = Campaign.objects.filter(pk=params.campaign_id).first() if params.campaign_id else None
    replace = params.replace_in_campaign
    prompts = prompts_to_polish(params=params)
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
                    message = describe_error(exc)
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
    params = PolishParams(
        campaign_id=campaign.pk if campaign is not None else None,
        prompt_ids=list(prompt_ids or []),
        ai_config_id=ai_config.pk if ai_config is not None else None,
        base_url=base_url,
        model=model,
        api_key_env=api_key_env,
        replace_in_campaign=replace_in_campaign,
    )
    polish_config_from_params(params)  # fail now, in the form, rather than in the worker
    title = f"Polish prompts of {campaign.name}" if campaign else f"Polish {len(prompt_ids or [])} prompts"
    return job_create(kind=POLISH, params=params, campaign=campaign, created_by=created_by, title=title)
