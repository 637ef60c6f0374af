"""AI annotation jobs: an AI judge labels a campaign's pairs on its aspects, resumably.

The work list of a job is a set of AICall rows, created once, in one bulk insert, on the job's first run:
one per pair and trial (pair mode) or one per prompt and trial (group mode, all selected images of a
prompt ranked in one call). The rows are the job's memory: a re-run of the job (a crashed worker's
message is redelivered) sends only the calls that have not succeeded, and every result is recorded in
one transaction with its judgments, so the batch never labels a pair twice nor skips one. The
Judgment table's unique constraint (pair, annotator, aspect, trial) is the backstop.

Execution modes: ``online`` (the default; calls go through :func:`pipeline.mllm.iter_batch` with the
judge's concurrency and rate limits) and ``batch`` (the OpenAI Batch API, see
:mod:`pipeline.services.ai_batch`).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from annotate.models import Annotator, Campaign, Image, Judgment, Pair, Prompt
from pipeline.jobs import JobContext, job_create
from pipeline.mllm import (
    DEFAULT_ASPECTS,
    DEFAULT_TEMPLATE_VERSION,
    Aspect,
    AttemptRecord,
    CallRequest,
    CallResult,
    ImageEncoding,
    RequestImage,
    ScoreScale,
    estimate_tokens,
    get_template,
    iter_batch,
)
from pipeline.mllm.providers import Judge, RetryPolicy, SimulatedJudge
from pipeline.models import ENV_VAR_NAME_MESSAGE, ENV_VAR_NAME_RE, AICall, AIJudgeConfig, Job

logger = logging.getLogger(__name__)

SELECTIONS = {
    "all": "All pairs",
    "unlabelled": "Only pairs without a label from this judge",
    "sample": "A random sample of n pairs",
}
EXECUTIONS = {"online": "Online (calls in flight, results as they come)", "batch": "OpenAI Batch API"}

#: Failures worth another try when the job runs again (a resumed job); bad answers are final.
RETRYABLE_REASONS = frozenset(
    {"rate_limited", "server_error", "timeout", "connection", "http_error", "internal_error", "cancelled"}
)
DEFAULT_MAX_OUTPUT_TOKENS = 1024
_MLLM_ASPECTS = {aspect.key: aspect for aspect in DEFAULT_ASPECTS}


# --- judges ---------------------------------------------------------------------------------------


def judge_from_config(config: AIJudgeConfig) -> Judge:
    """The mllm judge an AIJudgeConfig describes; raises RuntimeError if its API key variable is unset."""
    options = config.options or {}
    if config.api_key_env and not ENV_VAR_NAME_RE.match(config.api_key_env):
        raise RuntimeError(ENV_VAR_NAME_MESSAGE)  # never echo the value: it may be a pasted key
    if config.provider == AIJudgeConfig.Provider.SIMULATED:
        return SimulatedJudge(
            seed=int(options.get("seed", 0)),
            flip_probability=float(options.get("noise", options.get("flip_probability", 0.1))),
            latency_s=float(options.get("latency_s", 0.0)),
        )
    if config.provider == AIJudgeConfig.Provider.OPENAI:
        from pipeline.mllm.providers import OpenAICompatibleJudge, OpenAIJudgeConfig

        return OpenAICompatibleJudge(
            OpenAIJudgeConfig(
                model=config.model,
                base_url=config.base_url or None,
                api_key_env=config.api_key_env or None,
                temperature=config.temperature,
                max_output_tokens=int(options.get("max_output_tokens", DEFAULT_MAX_OUTPUT_TOKENS)),
                max_tokens_param=options.get("max_tokens_param", "max_tokens"),
                timeout_s=config.timeout_s,
                image_detail=options.get("image_detail"),
                structured_output=bool(options.get("structured_output", True)),
                seed=options.get("seed"),
            ),
            _retry_policy(config),
        )
    if config.provider == AIJudgeConfig.Provider.LOCAL:
        from pipeline.mllm.providers import LocalModelConfig, LocalTransformersJudge

        return LocalTransformersJudge(
            LocalModelConfig(
                model=config.model,
                device=str(options.get("device", "cpu")),
                dtype=str(options.get("dtype", "float32")),
                max_new_tokens=int(options.get("max_new_tokens", 512)),
                do_sample=config.temperature > 0,
                temperature=config.temperature or 1.0,
                max_parse_attempts=int(options.get("max_parse_attempts", 1)),
            )
        )
    raise ValueError(f"judge {config.name!r} has unknown provider {config.provider!r}")


def _retry_policy(config: AIJudgeConfig) -> RetryPolicy:
    options = config.options or {}
    return RetryPolicy(
        max_attempts=max(1, config.max_attempts),
        max_parse_attempts=int(options.get("max_parse_attempts", 2)),
        backoff_base_s=float(options.get("backoff_base_s", 0.5)),
        backoff_max_s=float(options.get("backoff_max_s", 30.0)),
        retry_after_cap_s=float(options.get("retry_after_cap_s", 60.0)),
    )


def judge_annotator(config: AIJudgeConfig) -> Annotator:
    """The Annotator row of an AI judge configuration, created on first use."""
    annotator, _ = Annotator.objects.get_or_create(
        ai_config=config, defaults={"kind": Annotator.Kind.AI, "name": config.name}
    )
    return annotator


def judge_queue(config: AIJudgeConfig) -> str:
    """Local models run on the gpu queue; API and simulated judges on the ai queue."""
    return "gpu" if config.provider == AIJudgeConfig.Provider.LOCAL else "ai"


def template_version_for(config: AIJudgeConfig) -> str:
    """The config's template if it fits its mode, else the default template of the mode."""
    try:
        if get_template(config.template_version).mode == config.mode:
            return config.template_version
    except KeyError:
        pass
    return DEFAULT_TEMPLATE_VERSION[config.mode]


def campaign_mllm_aspects(campaign: Campaign) -> tuple[Aspect, ...]:
    """The campaign's aspects as the judge sees them: the built-in rubric for the four defaults."""
    out = []
    for row in campaign.aspects.order_by("order", "key"):
        out.append(
            _MLLM_ASPECTS.get(row.key)
            or Aspect.custom(key=row.key, question=row.question, rubric=row.guideline, name=row.name)
        )
    return tuple(out)


# --- the work list ----------------------------------------------------------------------------------


def annotation_select_pairs(
    *, campaign: Campaign, judge_config: AIJudgeConfig, selection: str, sample_n: int | None, seed: int = 0
) -> list[int]:
    """Ids of the campaign's pairs a job would label, in id order."""
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    pairs = Pair.objects.filter(campaign=campaign)
    if selection == "unlabelled":
        labelled = Judgment.objects.filter(annotator__ai_config=judge_config).values("pair_id")
        pairs = pairs.exclude(pk__in=labelled)
    ids = list(pairs.order_by("pk").values_list("pk", flat=True))
    if selection == "sample":
        if not sample_n or sample_n < 1:
            raise ValueError("a random sample needs a number of pairs n >= 1")
        ids = sorted(random.Random(seed).sample(ids, min(sample_n, len(ids))))
    return ids


@dataclass(frozen=True)
class WorkUnit:
    """One call to make: its images in presentation order and the pairs it labels."""

    pair_id: int | None
    prompt_id: int
    image_ids: tuple[int, ...]
    pair_ids: tuple[int, ...]
    trial: int


def annotation_work_units(*, pair_ids: list[int], judge_config: AIJudgeConfig) -> list[WorkUnit]:
    """The calls that label these pairs: per pair (pair mode) or per prompt (group mode), per trial."""
    trials = (1, 2) if judge_config.swap_trial else (1,)
    rows = (
        Pair.objects.filter(pk__in=pair_ids)
        .order_by("pk")
        .values_list("pk", "prompt_id", "image_a_id", "image_b_id")
    )
    units: list[WorkUnit] = []
    if judge_config.mode == AIJudgeConfig.Mode.PAIR:
        for pk, prompt_id, a, b in rows:
            for trial in trials:
                order = (a, b) if trial == 1 else (b, a)
                units.append(WorkUnit(pk, prompt_id, order, (pk,), trial))
        return units
    groups: dict[int, tuple[set[int], list[int]]] = {}
    for pk, prompt_id, a, b in rows:
        images, pairs = groups.setdefault(prompt_id, (set(), []))
        images.update((a, b))
        pairs.append(pk)
    for prompt_id, (images, pairs) in sorted(groups.items()):
        ordered = tuple(sorted(images))
        for trial in trials:
            shown = ordered if trial == 1 else tuple(reversed(ordered))
            units.append(WorkUnit(None, prompt_id, shown, tuple(pairs), trial))
    return units


# --- estimate and start -----------------------------------------------------------------------------


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
    units = annotation_work_units(pair_ids=pair_ids, judge_config=judge_config)
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
        request = _request(
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
    cost = _cost(judge_config, prompt_tokens, completion_tokens)
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
) -> dict[str, Any]:
    """The params of an annotation job (also used to queue one as another job's follow-up)."""
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    if execution not in EXECUTIONS:
        raise ValueError(f"unknown execution mode {execution!r}; choose one of {', '.join(EXECUTIONS)}")
    if execution == "batch" and judge_config.provider != AIJudgeConfig.Provider.OPENAI:
        raise ValueError("The Batch API needs an OpenAI-compatible judge.")
    if selection == "sample" and not sample_n:
        raise ValueError("A random sample needs a number of pairs n.")
    return {
        "campaign_id": campaign.pk,
        "judge_config_id": judge_config.pk,
        "selection": selection,
        "sample_n": sample_n,
        "seed": seed,
        "execution": execution,
    }


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
        kind=Job.Kind.ANNOTATE,
        params=params,
        title=annotation_title(campaign=campaign, judge_config=judge_config),
        campaign=campaign,
        created_by=created_by,
        queue=judge_queue(judge_config),
    )


def demo_judge_ensure() -> AIJudgeConfig:
    """The simulated demo judge ("simulated-judge") and its AI annotator, created on first use."""
    config, _ = AIJudgeConfig.objects.get_or_create(
        name="simulated-judge",
        defaults={
            "provider": AIJudgeConfig.Provider.SIMULATED,
            "model": "simulated-defects-v1",
            "concurrency": 8,
            "options": {"noise": 0.15, "seed": 0, "latency_s": 0.02},
        },
    )
    judge_annotator(config)
    return config


# --- running a job ----------------------------------------------------------------------------------


def _cost(config: AIJudgeConfig, prompt_tokens: int, completion_tokens: int) -> Decimal:
    cost = (
        Decimal(prompt_tokens) * config.price_per_1k_prompt_tokens
        + Decimal(completion_tokens) * config.price_per_1k_completion_tokens
    ) / 1000
    return cost.quantize(Decimal("0.000001"))


def annotation_calls_ensure(*, job: Job, campaign: Campaign, judge_config: AIJudgeConfig) -> int:
    """Create the job's AICall rows on its first run (one bulk insert); later runs keep them. Returns the count."""
    existing = AICall.objects.filter(job=job).count()
    if existing:
        return existing
    params = job.params
    pair_ids = annotation_select_pairs(
        campaign=campaign,
        judge_config=judge_config,
        selection=params.get("selection", "all"),
        sample_n=params.get("sample_n"),
        seed=int(params.get("seed") or 0),
    )
    version = template_version_for(judge_config)
    units = annotation_work_units(pair_ids=pair_ids, judge_config=judge_config)
    AICall.objects.bulk_create(
        [
            AICall(
                job=job,
                judge=judge_config,
                pair_id=unit.pair_id,
                prompt_id=unit.prompt_id,
                image_ids=list(unit.image_ids),
                pair_ids=list(unit.pair_ids),
                trial=unit.trial,
                template_version=version,
            )
            for unit in units
        ],
        batch_size=1000,
        ignore_conflicts=True,  # the unique keys make a concurrent second insert a no-op
    )
    return AICall.objects.filter(job=job).count()


def _image_source(image: Image) -> Any:
    """A local path when the storage has one, else a reader the executor calls in its thread pool."""
    try:
        return image.file.path
    except NotImplementedError:  # object storage: read the bytes when the call is about to be sent
        name = str(image.file.name)

        def read() -> bytes:
            with default_storage.open(name, "rb") as handle:
                return handle.read()

        return read


def _request(
    *,
    key: str,
    unit_prompt: str,
    image_ids: Iterable[int],
    images: dict[int, Image],
    judge_config: AIJudgeConfig,
    aspects: tuple[Aspect, ...],
    scale: ScoreScale,
) -> CallRequest:
    shown = [images[i] for i in image_ids]
    return CallRequest(
        key=key,
        prompt=unit_prompt,
        images=tuple(RequestImage(str(image.pk), source=_image_source(image)) for image in shown),
        template_version=template_version_for(judge_config),
        aspects=aspects,
        scale=scale,
        image_encoding=ImageEncoding(max_side=judge_config.max_image_side),
        metadata={
            "image_meta": {
                str(image.pk): {"defects": (image.params or {}).get("defects", [])} for image in shown
            }
        },
    )


def _calls_to_send(job: Job) -> Q:
    return Q(job=job) & (
        Q(status=AICall.Status.PENDING) | Q(status=AICall.Status.FAILED, error_reason__in=RETRYABLE_REASONS)
    )


@dataclass(frozen=True)
class CallInfo:
    """What recording a call's answer needs from its row: the images as shown, the trial, its pairs."""

    image_ids: tuple[int, ...]
    trial: int
    pairs: dict[tuple[int, int], int]  # (image_a_id, image_b_id) -> pair id


def annotation_requests(
    *,
    job: Job,
    campaign: Campaign,
    judge_config: AIJudgeConfig,
    infos: dict[str, CallInfo],
    chunk: int = 200,
) -> Iterator[CallRequest]:
    """CallRequests for the job's calls still to send, built lazily in chunks (key = AICall id).

    Fills ``infos`` (key -> CallInfo) as it goes, so recording a result needs no extra read.
    """
    aspects = campaign_mllm_aspects(campaign)
    scale = ScoreScale(campaign.score_min, campaign.score_max)
    ids = list(AICall.objects.filter(_calls_to_send(job)).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), chunk):
        calls = list(
            AICall.objects.filter(pk__in=ids[start : start + chunk])
            .select_related("prompt")
            .only("pk", "image_ids", "pair_ids", "trial", "prompt__text")
            .order_by("pk")
        )
        images = Image.objects.only("pk", "file", "params").in_bulk(
            {i for call in calls for i in call.image_ids}
        )
        pairs = {
            pk: (a, b)
            for pk, a, b in Pair.objects.filter(
                pk__in={p for call in calls for p in call.pair_ids}
            ).values_list("pk", "image_a_id", "image_b_id")
        }
        for call in calls:
            assert call.prompt is not None
            key = str(call.pk)
            infos[key] = CallInfo(
                image_ids=tuple(int(i) for i in call.image_ids),
                trial=call.trial,
                pairs={pairs[p]: p for p in call.pair_ids if p in pairs},
            )
            yield _request(
                key=key,
                unit_prompt=call.prompt.text,
                image_ids=call.image_ids,
                images=images,
                judge_config=judge_config,
                aspects=aspects,
                scale=scale,
            )


@dataclass
class AnnotationRecorder:
    """Writes one result at a time: the AICall row, its judgments and the job's progress, in one transaction."""

    ctx: JobContext
    judge_config: AIJudgeConfig
    annotator: Annotator
    aspect_ids: dict[str, int]
    infos: dict[str, CallInfo]
    judgments_created: int = 0
    duplicates: int = 0

    def record(self, result: CallResult) -> None:
        """Record one result; a cancelled (never sent) call stays pending for the next run."""
        if result.status == "cancelled" and result.attempts == 0:
            return
        info = self.infos.pop(result.key)
        cost = _cost(self.judge_config, result.prompt_tokens, result.completion_tokens)
        ok = result.ok
        with transaction.atomic():
            # One conditional UPDATE: if two workers run the same job (a message redelivered while the
            # first still runs), the row lock makes the second wait, then see "succeeded" and skip.
            # Attempts, tokens and cost add to earlier runs' (a retried call was paid for each time).
            updated = (
                AICall.objects.filter(pk=int(result.key))
                .exclude(status=AICall.Status.SUCCEEDED)
                .update(
                    status=AICall.Status.SUCCEEDED if ok else AICall.Status.FAILED,
                    attempts=F("attempts") + result.attempts,
                    latency_s=result.latency_s,
                    prompt_tokens=F("prompt_tokens") + result.prompt_tokens,
                    completion_tokens=F("completion_tokens") + result.completion_tokens,
                    cost_usd=F("cost_usd") + cost,
                    template_version=result.template_version,
                    rendered_prompt=result.request.prompt_text(structured=result.structured),
                    raw_response=result.raw_text or "",
                    finish_reason=result.finish_reason or "",
                    error_reason=result.error.reason if result.error else "",
                    error_message=result.error.message[:5000] if result.error else "",
                    attempt_log=[_attempt_entry(a) for a in result.attempt_log],
                    finished_at=timezone.now(),
                )
            )
            if not updated:
                self.duplicates += 1
                return
            if ok:
                judgments = self._judgments(int(result.key), info, result)
                created = Judgment.objects.bulk_create(judgments, ignore_conflicts=True)
                self.judgments_created += len(created)
            self.ctx.advance()
            if cost:
                self.ctx.add_cost(cost)

    def _judgments(self, call_id: int, info: CallInfo, result: CallResult) -> list[Judgment]:
        position = {image_id: index for index, image_id in enumerate(info.image_ids)}
        out = []
        for pj in result.pairwise():
            first, second = int(pj.first), int(pj.second)
            a, b = min(first, second), max(first, second)
            pair_id = info.pairs.get((a, b))
            if pair_id is None or pj.aspect not in self.aspect_ids:
                continue  # group mode: two images of the prompt that form no selected pair
            if pj.winner is None:
                choice = Judgment.Choice.TIE
            else:
                choice = Judgment.Choice.A if int(pj.winner) == a else Judgment.Choice.B
            score_a, score_b = (
                (pj.first_score, pj.second_score) if first == a else (pj.second_score, pj.first_score)
            )
            out.append(
                Judgment(
                    pair_id=pair_id,
                    annotator=self.annotator,
                    aspect_id=self.aspect_ids[pj.aspect],
                    trial=info.trial,
                    choice=choice,
                    presented_order="AB" if position[a] < position[b] else "BA",
                    score_a=score_a,
                    score_b=score_b,
                    rationale=pj.rationale,
                    duration_s=result.latency_s,
                    template_version=result.template_version,
                    ai_call_id=call_id,
                )
            )
        return out


def _attempt_entry(attempt: AttemptRecord) -> dict[str, Any]:
    return {
        "outcome": attempt.outcome,
        "http_status": attempt.http_status,
        "latency_s": round(attempt.latency_s, 4),
        "waited_before_s": round(attempt.waited_before_s, 3),
        "prompt_tokens": attempt.prompt_tokens,
        "completion_tokens": attempt.completion_tokens,
    }


def annotation_job_summary(job: Job) -> dict[str, Any]:
    """Counts and usage of a job's calls: the job's result."""
    calls = AICall.objects.filter(job=job)
    totals = calls.aggregate(
        prompt_tokens=Sum("prompt_tokens"),
        completion_tokens=Sum("completion_tokens"),
        cost=Sum("cost_usd"),
        succeeded=Count("pk", filter=Q(status=AICall.Status.SUCCEEDED)),
        failed=Count("pk", filter=Q(status=AICall.Status.FAILED)),
        pending=Count("pk", filter=Q(status=AICall.Status.PENDING)),
    )
    reasons = dict(
        calls.filter(status=AICall.Status.FAILED)
        .values_list("error_reason")
        .annotate(n=Count("pk"))
        .values_list("error_reason", "n")
    )
    return {
        "calls": calls.count(),
        "succeeded": totals["succeeded"],
        "failed": totals["failed"],
        "pending": totals["pending"],
        "failures_by_reason": reasons,
        "judgments": Judgment.objects.filter(ai_call__job=job).count(),
        "prompt_tokens": totals["prompt_tokens"] or 0,
        "completion_tokens": totals["completion_tokens"] or 0,
        "cost_usd": str((totals["cost"] or Decimal("0")).quantize(Decimal("0.000001"))),
    }


def annotation_job(ctx: JobContext) -> dict[str, Any]:
    """Job handler: params campaign_id, judge_config_id, selection, sample_n, seed, execution."""
    job = Job.objects.get(pk=ctx.job_id)
    campaign = Campaign.objects.get(pk=ctx.params["campaign_id"])
    judge_config = AIJudgeConfig.objects.get(pk=ctx.params["judge_config_id"])
    total = annotation_calls_ensure(job=job, campaign=campaign, judge_config=judge_config)
    calls = AICall.objects.filter(job=job)
    to_send = calls.filter(_calls_to_send(job)).count()
    # Absolute progress and cost from the rows, so a resumed run starts from what was recorded.
    Job.objects.filter(pk=job.pk).update(
        progress_total=total,
        progress_done=total - to_send,
        cost_usd=calls.aggregate(c=Sum("cost_usd"))["c"] or Decimal("0"),
    )
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
    if ctx.params.get("execution", "online") == "batch":
        from pipeline.services.ai_batch import batch_run

        batch_run(ctx=ctx, job=job, campaign=campaign, judge_config=judge_config, recorder=recorder)
    elif to_send:
        judge = judge_from_config(judge_config)
        for result in iter_batch(
            annotation_requests(job=job, campaign=campaign, judge_config=judge_config, infos=infos),
            judge,
            concurrency=judge_config.concurrency,
            requests_per_minute=judge_config.requests_per_minute,
            tokens_per_minute=judge_config.tokens_per_minute,
            should_stop=ctx.should_stop,
        ):
            recorder.record(result)
    ctx.check_cancelled()
    summary = annotation_job_summary(job)
    if recorder.duplicates:
        ctx.log(f"{recorder.duplicates} results were already recorded by another run; kept the first")
    ctx.log(
        f"{summary['succeeded']} calls succeeded, {summary['failed']} failed; "
        f"{recorder.judgments_created} judgments created in this run"
    )
    return summary
