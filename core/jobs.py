"""The job system: every background job is a Job row, run by one of three thin Celery tasks.

Apps plug in by registering their job kinds from ``AppConfig.ready()``::

    job_kind_register(JobKind(name="annotate", label="AI annotation", queue="ai",
                              handler="pipeline.services.annotation.annotation_job",
                              params=AnnotationParams))

A kind names a handler (a plain function taking a JobContext, imported by dotted path when the job runs so
heavy ML imports stay out of the web process), the queue it runs on by default, and a frozen dataclass of
typed parameters (a JobParams subclass), validated when the job is created and handed to the handler as
``ctx.params``.

The runner locks the row, checks its state, runs the handler, and records the outcome, so a redelivered or
retried message never runs a finished job again. Handlers report progress and check the cancel flag
between units of work through the JobContext; they must be resumable (a crashed job is redelivered and
runs again, skipping work already recorded; ``ctx.save_state`` keeps what a resumed run needs).
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Concat, Least
from django.utils import timezone
from django.utils.module_loading import import_string

from core.models import Job
from core.registry import QUEUE_TASKS, JobParams, job_kind

logger = logging.getLogger(__name__)

# --- the context a handler sees -----------------------------------------------------------------------


class JobCancelled(Exception):
    """Raised inside a handler when an admin asked the job to stop."""


class JobContext:
    """What a handler sees of its job: typed parameters, saved state, progress, log, cost and cancel flag."""

    CANCEL_CHECK_INTERVAL_S = 0.5

    def __init__(self, job: Job) -> None:
        self.job_id: int = job.pk
        self.job = job
        # Typed as Any so a handler can annotate it with its kind's class: `params: MyParams = ctx.params`.
        self.params: Any = job_kind(job.kind).params.from_json(job.params or {})
        self.state: dict[str, Any] = dict(job.state or {})
        self._cancel_checked_at = 0.0
        self._cancelled = False

    def _update(self, **fields: Any) -> None:
        Job.objects.filter(pk=self.job_id).update(**fields)

    def set_total(self, total: int) -> None:
        """Set the number of work units; progress bars show done/total."""
        self._update(progress_total=max(0, int(total)))

    def set_progress(self, done: int, total: int | None = None) -> None:
        """Set absolute progress (used when resuming: count what is already done)."""
        fields: dict[str, Any] = {"progress_done": max(0, int(done))}
        if total is not None:
            fields["progress_total"] = max(0, int(total))
        self._update(**fields)

    def advance(self, n: int = 1) -> None:
        """Add n finished units; an atomic UPDATE, so parallel writers never lose a count."""
        done = F("progress_done") + n
        self._update(progress_done=Least(done, F("progress_total")))

    def add_cost(self, usd: Decimal | float) -> None:
        """Add spending (for example MLLM tokens) to the job's running cost."""
        self._update(cost_usd=F("cost_usd") + Decimal(str(usd)))

    def save_state(self, **values: Any) -> dict[str, Any]:
        """Merge JSON-ready values into the job's saved state (read back by a resumed run as ctx.state)."""
        self.state = {**self.state, **values}
        self._update(state=self.state)
        return self.state

    def log(self, message: str) -> None:
        """Append one timestamped line to the job log shown on the job page."""
        line = f"{timezone.now():%Y-%m-%d %H:%M:%S} {message}\n"
        logger.info("job %s: %s", self.job_id, message)
        self._update(log=Concat(F("log"), Value(line)))

    def should_stop(self) -> bool:
        """True once an admin asked to cancel; reads the flag at most every half second."""
        if self._cancelled:
            return True
        now = time.monotonic()
        if now - self._cancel_checked_at >= self.CANCEL_CHECK_INTERVAL_S:
            self._cancel_checked_at = now
            self._cancelled = Job.objects.filter(pk=self.job_id, cancel_requested=True).exists()
        return self._cancelled

    def check_cancelled(self) -> None:
        """Raise JobCancelled when the job should stop; call between units of work."""
        if self.should_stop():
            raise JobCancelled()


# --- creating, running, cancelling ---------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUp:
    """A job to queue once another succeeds (same campaign and creator)."""

    kind: str
    params: JobParams
    title: str = ""
    queue: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored form, on the first job's row."""
        return {"kind": self.kind, "params": self.params.to_json(), "title": self.title, "queue": self.queue}


def job_create(
    *,
    kind: str,
    params: JobParams,
    title: str = "",
    campaign: Any = None,
    created_by: Any = None,
    queue: str | None = None,
    follow_ups: Sequence[FollowUp] = (),
) -> Job:
    """Create a Job row and enqueue it once the surrounding transaction commits."""
    spec = job_kind(kind)
    if not isinstance(params, spec.params):
        raise TypeError(f"a {kind!r} job takes {spec.params.__name__}, not {type(params).__name__}")
    for follow_up in follow_ups:
        expected = job_kind(follow_up.kind).params
        if not isinstance(follow_up.params, expected):
            raise TypeError(f"follow-up {follow_up.kind!r} takes {expected.__name__}")
    queue = queue or spec.queue
    if queue not in QUEUE_TASKS:
        raise ValueError(f"Unknown queue {queue!r}; queues: {', '.join(QUEUE_TASKS)}")
    job = Job.objects.create(
        kind=kind,
        params=params.to_json(),
        follow_ups=[f.to_json() for f in follow_ups],
        title=title or spec.label,
        campaign=campaign,
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
        queue=queue,
        celery_task_id=str(uuid.uuid4()),
    )
    transaction.on_commit(lambda: job_enqueue(job=job))
    return job


def job_enqueue(*, job: Job) -> None:
    """Send the job's message to its queue (use job_create; this is for re-sending)."""
    from celery import current_app

    current_app.send_task(QUEUE_TASKS[job.queue], args=[job.pk], task_id=job.celery_task_id, queue=job.queue)


def job_cancel(*, job: Job) -> Job:
    """Ask a job to stop; a job that has not started yet is cancelled at once."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            return job
        job.cancel_requested = True
        fields = ["cancel_requested"]
        if job.status == Job.Status.PENDING:
            job.status = Job.Status.CANCELLED
            job.finished_at = timezone.now()
            fields += ["status", "finished_at"]
        job.save(update_fields=fields)
    return job


def _finish(job_id: int, status: str, **fields: Any) -> None:
    Job.objects.filter(pk=job_id).update(status=status, finished_at=timezone.now(), **fields)


def job_run(*, job_id: int, task_id: str = "") -> str:
    """Run a job's handler once: lock, check state, mark running, run, record. Returns the final status."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            logger.warning("job %s is gone; nothing to run", job_id)
            return "missing"
        if job.is_finished:
            return job.status
        if job.cancel_requested:
            job.status = Job.Status.CANCELLED
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "finished_at"])
            return job.status
        job.status = Job.Status.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.attempts += 1
        job.celery_task_id = task_id or job.celery_task_id
        job.save(update_fields=["status", "started_at", "attempts", "celery_task_id"])

    try:
        ctx = JobContext(job)
        if job.attempts > 1:
            ctx.log(f"attempt {job.attempts}: resuming after an interrupted run")
        handler: Callable[[JobContext], dict[str, Any] | None] = import_string(job_kind(job.kind).handler)
        result = handler(ctx) or {}
    except JobCancelled:
        _log_line(job_id, "cancelled by request")
        _finish(job_id, Job.Status.CANCELLED)
        return Job.Status.CANCELLED
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row, not lost in a log
        logger.exception("job %s failed", job_id)
        _log_line(job_id, "failed:\n" + traceback.format_exc(limit=8))
        _finish(job_id, Job.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:5000])
        return Job.Status.FAILED
    Job.objects.filter(pk=job_id, progress_total__gt=0).update(progress_done=F("progress_total"))
    with transaction.atomic():  # the follow-ups are queued if and only if the job is recorded as done
        _finish(job_id, Job.Status.SUCCEEDED, result=result)
        _create_follow_ups(job)
    return Job.Status.SUCCEEDED


def _log_line(job_id: int, message: str) -> None:
    line = f"{timezone.now():%Y-%m-%d %H:%M:%S} {message}\n"
    Job.objects.filter(pk=job_id).update(log=Concat(F("log"), Value(line)))


def _create_follow_ups(job: Job) -> None:
    """Queue the jobs listed in job.follow_ups once a job succeeds."""
    for spec in job.follow_ups or []:
        try:
            with transaction.atomic():
                kind = job_kind(spec["kind"])
                follow_up = job_create(
                    kind=kind.name,
                    params=kind.params.from_json(spec.get("params") or {}),
                    title=spec.get("title") or "",
                    campaign=job.campaign,
                    created_by=job.created_by,
                    queue=spec.get("queue"),
                )
        except (KeyError, TypeError, ValueError) as exc:  # a bad follow-up must not undo the job's success
            _log_line(job.pk, f"could not queue follow-up {spec!r}: {exc}")
        else:
            _log_line(job.pk, f"queued follow-up job {follow_up.pk} ({follow_up.kind})")


# --- the core's own kind -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoParams(JobParams):
    """The demo job counts `steps` units, sleeping `sleep_s` between them, and fails at `fail_at` if set."""

    steps: int = 20
    sleep_s: float = 0.25
    fail_at: int | None = None


def demo_countdown(ctx: JobContext) -> dict[str, Any]:
    """A job that counts `steps` units, sleeping between them; fails at `fail_at` if given.

    It exists to show and test the job machinery (progress, cancel, failure) without any model.
    """
    params: DemoParams = ctx.params
    ctx.set_total(params.steps)
    for i in range(params.steps):
        ctx.check_cancelled()
        if params.fail_at is not None and i == params.fail_at:
            raise RuntimeError(f"demo job asked to fail at step {i}")
        time.sleep(params.sleep_s)
        ctx.advance()
    return {"steps": params.steps}


# --- retrying ------------------------------------------------------------------------------------------


def job_retry(*, job: Job, by: Any = None) -> Job:
    """Resume a failed or cancelled job: back to pending, cancel flag cleared, re-enqueued after commit.

    Handlers are resumable, so the new run skips the work the earlier runs recorded. The old error stays
    in the log; anything else raises ValueError (a job that is pending, running or succeeded).
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
            raise ValueError(
                f"Job {job.pk} is {job.get_status_display().lower()}: only failed or cancelled jobs resume."
            )
        who = f" by {by.get_username()}" if getattr(by, "is_authenticated", False) else ""
        earlier = f" after: {job.error.splitlines()[0][:300]}" if job.error else ""
        job.status = Job.Status.PENDING
        job.cancel_requested = False
        job.finished_at = None
        job.error = ""
        job.celery_task_id = str(uuid.uuid4())
        job.save(update_fields=["status", "cancel_requested", "finished_at", "error", "celery_task_id"])
        _log_line(job.pk, f"retry requested{who}{earlier}")
        transaction.on_commit(lambda: job_enqueue(job=job))
    return job
