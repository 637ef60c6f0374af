"""An AI annotation job's work list and its recorder: AICall rows made once, results written once.

The work list of a job is a set of AICall rows, created once, in one bulk insert, on the job's first run:
one per pair and trial (pair mode) or one per prompt and trial (group mode, all selected images of a
prompt ranked in one call). The first trial's image order is random, seeded per job; the second trial
shows the same images reversed (``annotation_work_units``). The rows are the job's memory: a re-run of the
job (a crashed worker's job taken over) sends only the calls that have not succeeded, and every result is
recorded in
one transaction with its judgments, so the batch never labels a pair twice nor skips one. The
Judgment table's unique constraint (pair, annotator, aspect, trial) is the backstop.

Claims: a run sends only calls it claimed, and it claims them in the UPDATE that picks them
(:func:`annotation_calls_claim`), so two runs of one job can never send the same call. A claim names the
run (its job lease) and is renewed by the job's heartbeat; one older than JOB_LEASE_TIMEOUT_S is stale (its
run died) and the next run takes it. Recording a result releases the claim.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from annotate.models import Annotator, Campaign, Image, Judgment, Pair
from core.jobs import JobContext
from core.models import Job
from pipeline.jobs import AnnotationParams
from pipeline.mllm import (
    Aspect,
    AttemptRecord,
    CallRequest,
    CallResult,
    ImageEncoding,
    RequestImage,
    ScoreScale,
)
from pipeline.models import AICall, AIJudgeConfig
from pipeline.services.judges import campaign_mllm_aspects, judge_call_cost, template_version_for

SELECTIONS = {
    "all": "All pairs",
    "unlabelled": "Only pairs without a label from this judge",
    "sample": "A random sample of n pairs",
}

#: Failures worth another try when the job runs again (a resumed job); bad answers are final.
RETRYABLE_REASONS = frozenset(
    {
        "rate_limited",
        "server_error",
        "timeout",
        "connection",
        "http_error",
        "internal_error",
        "cancelled",
        "invalid_response",  # a 200 whose body is not a chat completion (HTML, cut JSON)
        "error_response",  # a 200 carrying an error object ("model overloaded")
    }
)
#: Characters of an attempt's raw reply kept in the attempt log (the call keeps its last answer whole).
ATTEMPT_TEXT_LIMIT = 2000


def annotation_select_pairs(
    *, campaign: Campaign, judge_config: AIJudgeConfig, selection: str, sample_n: int | None, seed: int = 0
) -> list[int]:
    """Ids of the campaign's pairs a job would label, in id order."""
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    pairs = Pair.objects.filter(campaign=campaign)
    if selection == "unlabelled":
        labelled = Judgment.objects.filter(annotator__ai_judge=judge_config).values("pair_id")
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


def presentation_rng(*, order_seed: str, unit: str) -> random.Random:
    """The random stream that orders one unit's images (``unit`` names the pair or prompt)."""
    # Seeded by a string, so the stream is the same in every process (no hash randomisation) and one
    # unit's order does not depend on which other units the job has.
    return random.Random(f"{order_seed}|{unit}")


def job_order_seed(*, job: Job, params: AnnotationParams) -> str:
    """The seed of a job's presentation orders: its id and its seed parameter."""
    return f"job{job.pk}|seed{params.seed}"


def annotation_work_units(
    *, pair_ids: list[int], judge_config: AIJudgeConfig, order_seed: str
) -> list[WorkUnit]:
    """The calls that label these pairs: per pair (pair mode) or per prompt (group mode), per trial.

    The first trial shows the images in a random order drawn from ``order_seed`` per pair (pair mode:
    image A first or image B first, each with probability 1/2) or per prompt (group mode: a shuffle of
    the prompt's images); the second trial shows the same images in the reverse order. Storage order
    (image A has the lower id, usually the first generator rendered) must not decide what a judge sees
    first, or a judge's position bias becomes a bias for or against a generator. The order is recorded in
    ``AICall.image_ids`` and, per judgment, in ``presented_order``.
    """
    trials = (1, 2) if judge_config.swap_trial else (1,)
    rows = (
        Pair.objects.filter(pk__in=pair_ids)
        .order_by("pk")
        .values_list("pk", "prompt_id", "image_a_id", "image_b_id")
    )
    units: list[WorkUnit] = []
    if judge_config.mode == AIJudgeConfig.Mode.PAIR:
        for pk, prompt_id, a, b in rows:
            a_first = presentation_rng(order_seed=order_seed, unit=f"pair{pk}").random() < 0.5
            first_order: tuple[int, ...] = (a, b) if a_first else (b, a)
            for trial in trials:
                shown = first_order if trial == 1 else first_order[::-1]
                units.append(WorkUnit(pk, prompt_id, shown, (pk,), trial))
        return units
    groups: dict[int, tuple[set[int], list[int]]] = {}
    for pk, prompt_id, a, b in rows:
        images, pairs = groups.setdefault(prompt_id, (set(), []))
        images.update((a, b))
        pairs.append(pk)
    for prompt_id, (images, pairs) in sorted(groups.items()):
        shuffled = sorted(images)
        presentation_rng(order_seed=order_seed, unit=f"prompt{prompt_id}").shuffle(shuffled)
        for trial in trials:
            shown = tuple(shuffled) if trial == 1 else tuple(reversed(shuffled))
            units.append(WorkUnit(None, prompt_id, shown, tuple(pairs), trial))
    return units


def annotation_calls_ensure(
    *, job: Job, campaign: Campaign, judge_config: AIJudgeConfig, params: AnnotationParams
) -> int:
    """Create the job's AICall rows on its first run (one bulk insert); later runs keep them. Returns the count."""
    existing = AICall.objects.filter(job=job).count()
    if existing:
        return existing
    pair_ids = annotation_select_pairs(
        campaign=campaign,
        judge_config=judge_config,
        selection=params.selection,
        sample_n=params.sample_n,
        seed=params.seed,
    )
    version = template_version_for(judge_config)
    units = annotation_work_units(
        pair_ids=pair_ids, judge_config=judge_config, order_seed=job_order_seed(job=job, params=params)
    )
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


def annotation_request(
    *,
    key: str,
    unit_prompt: str,
    image_ids: Iterable[int],
    images: dict[int, Image],
    judge_config: AIJudgeConfig,
    aspects: tuple[Aspect, ...],
    scale: ScoreScale,
) -> CallRequest:
    """The kit's request for one call: the prompt, the images in the order shown, aspects and scale."""
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


def calls_to_send(job: Job) -> Q:
    """The job's calls still to send: pending ones and retryable failures."""
    return Q(job=job) & (
        Q(status=AICall.Status.PENDING) | Q(status=AICall.Status.FAILED, error_reason__in=RETRYABLE_REASONS)
    )


def _claimable(job: Job, after_pk: int) -> Q:
    """Calls to send after `after_pk` that no live run holds (unclaimed, or claimed by a stale run)."""
    stale = timezone.now() - timedelta(seconds=settings.JOB_LEASE_TIMEOUT_S)
    return (
        calls_to_send(job)
        & Q(pk__gt=after_pk)
        & (Q(claimed_by="") | Q(claimed_at__isnull=True) | Q(claimed_at__lt=stale))
    )


def annotation_calls_claim(*, job: Job, owner: str, after_pk: int, limit: int) -> list[int]:
    """Claim up to `limit` of the job's calls to send after `after_pk` for the run `owner`; their ids.

    One UPDATE picks and claims: its WHERE repeats the claimable condition, which PostgreSQL re-checks on
    each row after waiting for a concurrent claimer's lock, so a call claimed by another run in the
    meantime is skipped, never claimed twice (SQLite runs one writer at a time)."""
    token = f"{owner}/{after_pk}"  # unique per chunk of a run: the cursor only moves forward
    claimable = _claimable(job, after_pk)
    picked = AICall.objects.filter(claimable).order_by("pk").values("pk")[:limit]
    AICall.objects.filter(claimable, pk__in=picked).update(claimed_by=token, claimed_at=timezone.now())
    return list(AICall.objects.filter(job=job, claimed_by=token).order_by("pk").values_list("pk", flat=True))


def annotation_claims_renew(*, job: Job, owner: str) -> int:
    """Renew the claims of run `owner` (called by the job's heartbeat); returns how many."""
    return AICall.objects.filter(job=job, claimed_by__startswith=f"{owner}/").update(
        claimed_at=timezone.now()
    )


def annotation_claims_release(*, job: Job, owner: str) -> int:
    """Give back the calls run `owner` claimed and did not record (it stopped early); returns how many."""
    return AICall.objects.filter(job=job, claimed_by__startswith=f"{owner}/").update(
        claimed_by="", claimed_at=None
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
    owner: str,
    chunk: int = 50,
) -> Iterator[CallRequest]:
    """CallRequests for the job's calls still to send, claimed for run `owner` chunk by chunk (key = AICall id).

    Each call is tried at most once per run (a cursor on the id moves forward). Fills ``infos``
    (key -> CallInfo) as it goes, so recording a result needs no extra read.
    """
    aspects = campaign_mllm_aspects(campaign)
    scale = ScoreScale(campaign.score_min, campaign.score_max)
    cursor = 0
    while True:
        ids = annotation_calls_claim(job=job, owner=owner, after_pk=cursor, limit=chunk)
        if not ids:
            if AICall.objects.filter(_claimable(job, cursor)).exists():
                continue  # another run claimed the rows this one picked; pick again
            return
        cursor = ids[-1]
        calls = list(
            AICall.objects.filter(pk__in=ids)
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
            yield annotation_request(
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
        """Record one result (see :meth:`record_many`)."""
        self.record_many([result])

    def record_many(self, results: list[CallResult]) -> None:
        """Record results that arrived together in one transaction, releasing their claims.

        A cancelled call that was never sent stays pending for the next run. Idempotent: the rows are
        locked and their status read first. A result for a call another run already recorded (both sent
        it, which claims prevent unless a run outlived its lease) creates nothing, but its attempts,
        tokens and cost are added: the provider billed them too. One commit for the lot keeps answers
        from queueing in memory when writing is slower than the server (a crash loses what is queued)."""
        sent: list[CallResult] = []
        unsent: list[int] = []
        for result in results:
            if result.status == "cancelled" and result.attempts == 0:
                self.infos.pop(result.key, None)
                unsent.append(int(result.key))
            else:
                sent.append(result)
        if unsent:
            AICall.objects.filter(pk__in=unsent).exclude(status=AICall.Status.SUCCEEDED).update(
                claimed_by="", claimed_at=None
            )
        if not sent:
            return
        done = 0
        spent = Decimal("0")
        judgments: list[Judgment] = []
        with transaction.atomic():
            # Locked in id order, so two recorders of one job never wait on each other in a circle.
            rows = AICall.objects.select_for_update().only("pk", "status", "attempt_log").order_by("pk")
            calls = {call.pk: call for call in rows.filter(pk__in=[int(r.key) for r in sent])}
            for result in sent:
                call = calls[int(result.key)]
                info = self.infos.pop(result.key)
                cost = judge_call_cost(self.judge_config, result.prompt_tokens, result.completion_tokens)
                spent += cost
                entries = [_attempt_entry(a) for a in result.attempt_log]
                usage = {
                    "attempts": F("attempts") + result.attempts,
                    "prompt_tokens": F("prompt_tokens") + result.prompt_tokens,
                    "completion_tokens": F("completion_tokens") + result.completion_tokens,
                    "cost_usd": F("cost_usd") + cost,
                }
                if call.status == AICall.Status.SUCCEEDED:
                    for entry in entries:
                        entry["duplicate"] = True
                    AICall.objects.filter(pk=call.pk).update(
                        attempt_log=[*call.attempt_log, *entries], **usage
                    )
                    self.duplicates += 1
                    continue
                AICall.objects.filter(pk=call.pk).update(
                    status=AICall.Status.SUCCEEDED if result.ok else AICall.Status.FAILED,
                    latency_s=result.latency_s,
                    template_version=result.template_version,
                    rendered_prompt=result.request.prompt_text(structured=result.structured),
                    raw_response=result.raw_text or "",
                    finish_reason=result.finish_reason or "",
                    error_reason=result.error.reason if result.error else "",
                    error_message=result.error.message[:5000] if result.error else "",
                    attempt_log=[*call.attempt_log, *entries],
                    repairs=list(result.answer.repairs) if result.answer is not None else [],
                    claimed_by="",
                    claimed_at=None,
                    finished_at=timezone.now(),
                    **usage,
                )
                if result.ok:
                    judgments += self._judgments(call.pk, info, result)
                done += 1
            if judgments:
                created = Judgment.objects.bulk_create(judgments, ignore_conflicts=True)
                self.judgments_created += len(created)
            if done or spent:
                self.ctx.advance(done, cost=spent)

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
    entry: dict[str, Any] = {
        "outcome": attempt.outcome,
        "http_status": attempt.http_status,
        "latency_s": round(attempt.latency_s, 4),
        "waited_before_s": round(attempt.waited_before_s, 3),
        "prompt_tokens": attempt.prompt_tokens,
        "completion_tokens": attempt.completion_tokens,
        # False: the request may have been billed but no reply with its usage reached us.
        "usage_known": attempt.usage_known,
        "raw_text": (attempt.raw_text or "")[:ATTEMPT_TEXT_LIMIT],
    }
    if attempt.message:
        entry["message"] = attempt.message[:1000]
    if attempt.finish_reason:
        entry["finish_reason"] = attempt.finish_reason
    if attempt.repairs:
        entry["repairs"] = list(attempt.repairs)
    if attempt.late_reply_s is not None:
        entry["late_reply_s"] = round(attempt.late_reply_s, 3)
    return entry


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
    unknown = late = 0
    for log in calls.filter(Q(attempts__gt=1) | Q(status=AICall.Status.FAILED)).values_list(
        "attempt_log", flat=True
    ):
        for entry in log or []:
            unknown += entry.get("usage_known") is False
            late += "late_reply_s" in entry
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
        # Attempts whose usage we never learned (sent, no reply): the provider may have billed them.
        "attempts_usage_unknown": unknown,
        # Replies that came after the client's timeout, counted in tokens and cost all the same.
        "late_replies": late,
    }
