"""AI annotation jobs: an AI judge labels a campaign's pairs on its aspects, resumably.

This module estimates, starts and runs a job. The work list (AICall rows) and the recording of results
live in :mod:`pipeline.services.annotation_calls`; the judge configuration in
:mod:`pipeline.services.judges`. Execution modes: ``online`` (the default; calls go through
:func:`pipeline.mllm.iter_batch_ready` with the judge's concurrency and rate limits) and ``batch`` (the OpenAI
Batch API, :mod:`pipeline.services.annotation_batch`).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from annotate.models import Campaign, Image, Prompt
from core.jobs import JobContext, job_create, worker_identity
from core.models import Job
from pipeline.jobs import ANNOTATE, AnnotationParams
from pipeline.mllm import ScoreScale, estimate_tokens, iter_batch_ready
from pipeline.mllm.providers import Judge
from pipeline.models import AICall, AIJudgeConfig
from pipeline.services.annotation_calls import (
    SELECTIONS,
    AnnotationRecorder,
    CallInfo,
    annotation_calls_ensure,
    annotation_claims_release,
    annotation_claims_renew,
    annotation_job_summary,
    annotation_request,
    annotation_requests,
    annotation_select_pairs,
    annotation_work_units,
    calls_to_send,
)
from pipeline.services.judges import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    campaign_mllm_aspects,
    judge_annotator,
    judge_call_cost,
    judge_from_config,
    judge_queue,
)

EXECUTIONS = {"online": "Online (calls in flight, results as they come)", "batch": "OpenAI Batch API"}


@dataclass(frozen=True)
class AnnotationEstimate:
    """What a job would do and cost, before it is launched."""

    pairs: int
    calls: int
    judgments: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    simulated: bool
    warning: str = ""


def annotation_estimate(
    *,
    campaign: Campaign,
    judge_config: AIJudgeConfig,
    selection: str = "all",
    sample_n: int | None = None,
    seed: int = 0,
    sample_calls: int = 5,
) -> AnnotationEstimate:
    """Call count, tokens and cost of annotating a campaign with a judge (tokens from a few sample calls)."""
    pair_ids = annotation_select_pairs(
        campaign=campaign, judge_config=judge_config, selection=selection, sample_n=sample_n, seed=seed
    )
    # Orders do not change what a call costs; the job draws its own when it makes its work list.
    units = annotation_work_units(pair_ids=pair_ids, judge_config=judge_config, order_seed="estimate")
    aspects = campaign_mllm_aspects(campaign)
    warning = ""
    try:
        judge: Judge | None = judge_from_config(judge_config)
    except RuntimeError as exc:  # the key variable is unset here; the worker may still have it
        judge, warning = None, str(exc)
    max_output = int((judge_config.options or {}).get("max_output_tokens", DEFAULT_MAX_OUTPUT_TOKENS))
    if judge_config.is_simulated:
        max_output = 0
    per_call: list[int] = []
    sample = units[:: max(1, len(units) // sample_calls)][:sample_calls] if units else []
    images = Image.objects.in_bulk({i for unit in sample for i in unit.image_ids})
    texts = dict(Prompt.objects.filter(pk__in={u.prompt_id for u in sample}).values_list("pk", "text"))
    for unit in sample:
        request = annotation_request(
            key="estimate",
            unit_prompt=texts[unit.prompt_id],
            image_ids=unit.image_ids,
            images=images,
            judge_config=judge_config,
            aspects=aspects,
            scale=ScoreScale(campaign.score_min, campaign.score_max),
        )
        with contextlib.suppress(OSError, ValueError):  # a missing file counts as text only here
            request = request.with_encoded_images()
        if judge is not None:
            total = judge.estimate_tokens(request)
        else:
            total = estimate_tokens(request, max_output_tokens=max_output)
        per_call.append(max(0, total - max_output) if total else 0)
    mean_prompt = sum(per_call) / len(per_call) if per_call else 0
    prompt_tokens = round(mean_prompt * len(units))
    completion_tokens = max_output * len(units) if not judge_config.is_simulated else 0
    cost = judge_call_cost(judge_config, prompt_tokens, completion_tokens)
    n_aspects = len(aspects)
    judgments = sum(len(unit.pair_ids) for unit in units) * n_aspects
    return AnnotationEstimate(
        pairs=len(pair_ids),
        calls=len(units),
        judgments=judgments,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cost,
        simulated=judge_config.is_simulated,
        warning=warning,
    )


def annotation_params(
    *,
    campaign: Campaign,
    judge_config: AIJudgeConfig,
    selection: str = "all",
    sample_n: int | None = None,
    seed: int = 0,
    execution: str = "online",
) -> AnnotationParams:
    """The params of an annotation job (also used to queue one as another job's follow-up)."""
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    if execution not in EXECUTIONS:
        raise ValueError(f"unknown execution mode {execution!r}; choose one of {', '.join(EXECUTIONS)}")
    if execution == "batch" and judge_config.provider != AIJudgeConfig.Provider.OPENAI:
        raise ValueError("The Batch API needs an OpenAI-compatible judge.")
    if selection == "sample" and not sample_n:
        raise ValueError("A random sample needs a number of pairs n.")
    return AnnotationParams(
        campaign_id=campaign.pk,
        judge_config_id=judge_config.pk,
        selection=selection,
        sample_n=sample_n,
        seed=seed,
        execution=execution,
    )


def annotation_title(*, campaign: Campaign, judge_config: AIJudgeConfig) -> str:
    """A job title naming the judge (and that it is simulated) and the campaign."""
    return f"Annotate {campaign.name} with {judge_config}"


def annotation_start(
    *,
    campaign: Campaign,
    judge_config: AIJudgeConfig,
    selection: str = "all",
    sample_n: int | None = None,
    seed: int = 0,
    execution: str = "online",
    created_by: Any = None,
) -> Job:
    """Queue an AI annotation job (on the ai queue; local models on the gpu queue)."""
    params = annotation_params(
        campaign=campaign,
        judge_config=judge_config,
        selection=selection,
        sample_n=sample_n,
        seed=seed,
        execution=execution,
    )
    return job_create(
        kind=ANNOTATE,
        params=params,
        title=annotation_title(campaign=campaign, judge_config=judge_config),
        campaign=campaign,
        created_by=created_by,
        queue=judge_queue(judge_config),
    )


def annotation_job(ctx: JobContext) -> dict[str, Any]:
    """Job handler (AnnotationParams): make the work list on the first run, send what is left, record it."""
    params: AnnotationParams = ctx.params
    job = Job.objects.get(pk=ctx.job_id)
    campaign = Campaign.objects.get(pk=params.campaign_id)
    judge_config = AIJudgeConfig.objects.get(pk=params.judge_config_id)
    total = annotation_calls_ensure(job=job, campaign=campaign, judge_config=judge_config, params=params)
    calls = AICall.objects.filter(job=job)
    to_send = calls.filter(calls_to_send(job)).count()
    # Absolute progress and cost from the rows, so a resumed run starts from what was recorded.
    ctx.set_progress(total - to_send, total)
    ctx.set_cost(calls.aggregate(c=Sum("cost_usd"))["c"] or Decimal("0"))
    # The run's claims on calls live as long as its lease: the heartbeat renews both.
    owner = ctx.owner or f"{worker_identity()}/{uuid.uuid4().hex[:12]}"
    ctx.on_heartbeat(lambda: annotation_claims_renew(job=job, owner=owner))
    label = " (simulated)" if judge_config.is_simulated else ""
    ctx.log(f"{judge_config.name}{label}: {to_send} of {total} calls to send ({judge_config.mode} mode)")
    infos: dict[str, CallInfo] = {}
    recorder = AnnotationRecorder(
        ctx=ctx,
        judge_config=judge_config,
        annotator=judge_annotator(judge_config),
        aspect_ids=dict(campaign.aspects.values_list("key", "pk")),
        infos=infos,
    )
    try:
        if params.execution == "batch":
            from pipeline.services.annotation_batch import batch_run

            batch_run(
                ctx=ctx, job=job, campaign=campaign, judge_config=judge_config, recorder=recorder, owner=owner
            )
        elif to_send:
            judge = judge_from_config(judge_config)
            for ready in iter_batch_ready(
                annotation_requests(
                    job=job, campaign=campaign, judge_config=judge_config, infos=infos, owner=owner
                ),
                judge,
                concurrency=judge_config.concurrency,
                requests_per_minute=judge_config.requests_per_minute,
                tokens_per_minute=judge_config.tokens_per_minute,
                should_stop=ctx.should_stop,
            ):
                recorder.record_many(ready)
    finally:
        annotation_claims_release(job=job, owner=owner)  # what a stopped run claimed but never sent
    ctx.check_cancelled()
    summary = annotation_job_summary(job)
    ctx.set_cost(Decimal(summary["cost_usd"]))
    if recorder.duplicates:
        ctx.log(f"{recorder.duplicates} results were already recorded by another run; kept the first")
    ctx.log(
        f"{summary['succeeded']} calls succeeded, {summary['failed']} failed; "
        f"{recorder.judgments_created} judgments created in this run"
    )
    return summary
