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
between units of work through the JobContext; they must be resumable (a crashed job runs again, skipping
work already recorded; ``ctx.save_state`` keeps what a resumed run needs).

The life cycle around crashes and outages (README, "Jobs"):

* **Outbox.** ``job_create`` commits the row, then publishes its message with a short timeout and one
  retry (JOB_PUBLISH_TIMEOUT_S, JOB_PUBLISH_RETRIES). A message the broker did not take leaves the job
  *queued, not sent* (``sent_at`` empty, ``send_error`` saying why); the sweeper sends it later.
* **Lease.** The run that starts a job owns it: ``lease_owner`` names the run, and a heartbeat thread
  renews ``heartbeat_at`` every JOB_HEARTBEAT_INTERVAL_S. A message for a job whose lease is live
  (redelivered, or sent twice) returns at once. A lease not renewed for JOB_LEASE_TIMEOUT_S is stale: the
  next run that gets a message for the job takes it over, and the sweeper queues such jobs again. A run
  that lost its lease stops between units of work and never writes to the row again; every write of a
  run is conditional on its lease, so a finished job's row is never rewritten.
* **Sweeper.** ``jobs_sweep`` (Celery beat, every JOB_SWEEP_INTERVAL_S) re-queues stale jobs, cancels
  the stale ones whose cancel was asked, and sends what is in the outbox.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Concat, Least
from django.utils import timezone
from django.utils.module_loading import import_string

from core.models import Job
from core.registry import QUEUE_TASKS, JobParams, job_kind
from core.storage_io import storage_failure

logger = logging.getLogger(__name__)

# --- the context a handler sees -----------------------------------------------------------------------


class JobCancelled(Exception):
    """Raised inside a handler when an admin asked the job to stop."""


class JobLeaseLost(JobCancelled):
    """Raised inside a handler whose run no longer owns the job (its lease went stale and was taken)."""


class JobContext:
    """What a handler sees of its job: typed parameters, saved state, progress, log, cost and cancel flag.

    ``owner`` is the run's lease (None outside the runner): every write goes through a conditional UPDATE
    on it, so a run that lost its job writes nothing more to the row and stops at the next check.
    """

    CANCEL_CHECK_INTERVAL_S = 0.5

    def __init__(self, job: Job, *, owner: str | None = None) -> None:
        self.job_id: int = job.pk
        self.job = job
        self.owner = owner
        # Typed as Any so a handler can annotate it with its kind's class: `params: MyParams = ctx.params`.
        self.params: Any = job_kind(job.kind).params.from_json(job.params or {})
        self.state: dict[str, Any] = dict(job.state or {})
        self._cancel_checked_at = 0.0
        self._cancelled = False
        self.lease_lost = threading.Event()
        self._heartbeat_hooks: list[Callable[[], object]] = []

    def _rows(self) -> Any:
        rows = Job.objects.filter(pk=self.job_id)
        if self.owner is not None:
            rows = rows.filter(lease_owner=self.owner, status=Job.Status.RUNNING)
        return rows

    def _update(self, **fields: Any) -> None:
        if not self._rows().update(**fields) and self.owner is not None:
            self.lease_lost.set()

    def set_total(self, total: int) -> None:
        """Set the number of work units; progress bars show done/total."""
        self._update(progress_total=max(0, int(total)))

    def set_progress(self, done: int, total: int | None = None) -> None:
        """Set absolute progress (used when resuming: count what is already done)."""
        fields: dict[str, Any] = {"progress_done": max(0, int(done))}
        if total is not None:
            fields["progress_total"] = max(0, int(total))
        self._update(**fields)

    def advance(self, n: int = 1, *, cost: Decimal | float = 0) -> None:
        """Add n finished units (and what they cost); one atomic UPDATE, so parallel writers never lose a count."""
        done = F("progress_done") + n
        fields: dict[str, Any] = {"progress_done": Least(done, F("progress_total"))}
        if cost:
            fields["cost_usd"] = F("cost_usd") + Decimal(str(cost))
        self._update(**fields)

    def add_cost(self, usd: Decimal | float) -> None:
        """Add spending (for example MLLM tokens) to the job's running cost."""
        self._update(cost_usd=F("cost_usd") + Decimal(str(usd)))

    def set_cost(self, usd: Decimal) -> None:
        """Set the job's cost (a resumed run counts what its calls already cost)."""
        self._update(cost_usd=Decimal(str(usd)))

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

    def on_heartbeat(self, hook: Callable[[], object]) -> None:
        """Run `hook` on every heartbeat while this run holds the lease (in the heartbeat's thread).

        Handlers use it to keep their own claims fresh (an AI job renews its claimed calls)."""
        self._heartbeat_hooks.append(hook)

    def should_stop(self) -> bool:
        """True once an admin asked to cancel or the run lost its lease; reads the flag every half second."""
        if self._cancelled or self.lease_lost.is_set():
            return True
        now = time.monotonic()
        if now - self._cancel_checked_at >= self.CANCEL_CHECK_INTERVAL_S:
            self._cancel_checked_at = now
            self._cancelled = Job.objects.filter(pk=self.job_id, cancel_requested=True).exists()
        return self._cancelled or self.lease_lost.is_set()

    def check_cancelled(self) -> None:
        """Raise JobCancelled (JobLeaseLost when the job was taken over) when the job should stop."""
        if self.should_stop():
            if self.lease_lost.is_set():
                raise JobLeaseLost()
            raise JobCancelled()


# --- the lease ---------------------------------------------------------------------------------------


def worker_identity() -> str:
    """``host:pid`` of this process, the first part of every lease it takes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=settings.JOB_LEASE_TIMEOUT_S)


def _stale_running() -> Q:
    """Running jobs whose lease went stale (a row from before leases counts from its start)."""
    cutoff = _lease_cutoff()
    return Q(status=Job.Status.RUNNING) & (
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )


class _Heartbeat(threading.Thread):
    """Renews a run's lease every JOB_HEARTBEAT_INTERVAL_S; sets ``ctx.lease_lost`` if the lease is gone."""

    def __init__(self, ctx: JobContext) -> None:
        super().__init__(name=f"job-{ctx.job_id}-heartbeat", daemon=True)
        self.ctx = ctx
        self._stopped = threading.Event()

    def run(self) -> None:
        interval = max(0.05, float(settings.JOB_HEARTBEAT_INTERVAL_S))
        try:
            while not self._stopped.wait(interval):
                try:
                    renewed = self.ctx._rows().update(heartbeat_at=timezone.now())
                    if not renewed:
                        logger.warning("job %s: lease %s is gone; stopping", self.ctx.job_id, self.ctx.owner)
                        self.ctx.lease_lost.set()
                        return
                    for hook in self.ctx._heartbeat_hooks:
                        hook()
                except DatabaseError:  # a database blip: try again; the lease expires if it lasts
                    logger.exception("job %s: heartbeat failed", self.ctx.job_id)
                    connections.close_all()
        finally:
            connections.close_all()  # this thread's connection only (connections are per thread)

    def stop(self) -> None:
        """Stop renewing and wait for the thread."""
        self._stopped.set()
        self.join(timeout=30)


# --- creating, sending, cancelling ---------------------------------------------------------------------


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
    """Create a Job row and send its message once the surrounding transaction commits (see the outbox)."""
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


def _publish(*, queue: str, job_id: int, task_id: str) -> None:
    """Publish one job message with a short timeout and retry policy; raises when the broker refuses."""
    from celery import current_app

    timeout = float(settings.JOB_PUBLISH_TIMEOUT_S)
    options = {
        **(current_app.conf.broker_transport_options or {}),
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
    }
    # A connection of its own, so these timeouts never apply to a worker's consuming connection.
    with current_app.connection_for_write(transport_options=options) as connection:
        current_app.send_task(
            QUEUE_TASKS[queue],
            args=[job_id],
            task_id=task_id,
            queue=queue,
            connection=connection,
            ignore_result=True,  # else the Redis result backend is contacted first, and retries for ~20 s
            retry=True,
            retry_policy={
                "max_retries": int(settings.JOB_PUBLISH_RETRIES),
                "interval_start": 0.2,
                "interval_step": 0.5,
                "interval_max": 1.0,
            },
        )


def job_enqueue(*, job: Job) -> bool:
    """Send the job's message; False when the broker did not take it (the job stays queued, not sent).

    Never raises for a broker failure: the row is committed, the page must answer, and the sweeper sends
    the job later (``send_error`` says why it is waiting)."""
    task_id = str(uuid.uuid4())
    try:
        _publish(queue=job.queue, job_id=job.pk, task_id=task_id)
    except Exception as exc:  # noqa: BLE001 - kombu, redis and socket errors alike leave it in the outbox
        logger.warning("job %s: the broker did not take its message: %s", job.pk, exc)
        reason = f"{type(exc).__name__}: {exc}"[:500]
        Job.objects.filter(pk=job.pk, status=Job.Status.PENDING, sent_at__isnull=True).update(
            send_error=reason
        )
        return False
    # Conditional: a fast worker may have started (it marks the job sent) or even finished it already.
    Job.objects.filter(pk=job.pk, sent_at__isnull=True).update(
        sent_at=timezone.now(), send_error="", celery_task_id=task_id
    )
    return True


def job_cancel(*, job: Job) -> Job:
    """Ask a job to stop; a job not started yet, or whose run died (stale lease), is cancelled at once."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            return job
        job.cancel_requested = True
        fields = ["cancel_requested"]
        stale = job.lease_is_stale
        if job.status == Job.Status.PENDING or stale:
            if stale:
                job.log += _line(f"cancelled: its run ({job.lease_owner or 'unknown'}) stopped heartbeating")
                fields.append("log")
            job.status = Job.Status.CANCELLED
            job.finished_at = timezone.now()
            job.lease_owner = ""
            fields += ["status", "finished_at", "lease_owner"]
        job.save(update_fields=fields)
    return job


# --- running -------------------------------------------------------------------------------------------

#: What job_run returns when another run holds a live lease on the job (a duplicate message).
LEASED = "leased"
#: What job_run returns when its run lost the lease while working (another run took the job over).
LEASE_LOST = "lease_lost"


def _line(message: str) -> str:
    return f"{timezone.now():%Y-%m-%d %H:%M:%S} {message}\n"


def _take(job_id: int, task_id: str, owner: str) -> tuple[Job | None, str | None, str]:
    """Lock the row and take the lease: (job, None, note) when this run owns it, else (job, status, "")."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            logger.warning("job %s is gone; nothing to run", job_id)
            return None, "missing", ""
        if job.is_finished:
            return job, job.status, ""
        note = ""
        if job.status == Job.Status.RUNNING:
            if not job.lease_is_stale:
                # A duplicate or redelivered message: the owning run goes on (and sees any cancel itself).
                logger.info(
                    "job %s runs under lease %s; this message is a duplicate", job_id, job.lease_owner
                )
                return job, LEASED, ""
            last = job.heartbeat_at or job.started_at
            note = f"took over from {job.lease_owner or 'a run'} (no heartbeat since {last:%H:%M:%S})"
        if job.cancel_requested:
            job.status = Job.Status.CANCELLED
            job.finished_at = timezone.now()
            job.lease_owner = ""
            job.save(update_fields=["status", "finished_at", "lease_owner"])
            return job, job.status, ""
        now = timezone.now()
        job.status = Job.Status.RUNNING
        job.started_at = job.started_at or now
        job.sent_at = job.sent_at or now  # the message evidently arrived
        job.attempts += 1
        job.celery_task_id = task_id or job.celery_task_id
        job.lease_owner = owner
        job.heartbeat_at = now
        job.save(
            update_fields=[
                "status", "started_at", "sent_at", "attempts", "celery_task_id", "lease_owner", "heartbeat_at"
            ]
        )  # fmt: skip
        return job, None, note


def job_run(*, job_id: int, task_id: str = "") -> str:
    """Run a job's handler once: lock, take the lease, run, record. Returns the final status.

    Returns at once with the row's status for a finished job, ``"leased"`` when another run holds a live
    lease, ``"missing"`` for a deleted row; ``"lease_lost"`` when this run lost the job while working."""
    owner = f"{worker_identity()}/{uuid.uuid4().hex[:12]}"
    job, early, note = _take(job_id, task_id, owner)
    if early is not None or job is None:
        return early or "missing"

    ctx: JobContext | None = None
    heartbeat: _Heartbeat | None = None
    try:
        ctx = JobContext(job, owner=owner)
        heartbeat = _Heartbeat(ctx)
        heartbeat.start()
        if note:
            ctx.log(note)
        if job.attempts > 1:
            ctx.log(f"attempt {job.attempts}: resuming after an interrupted run")
        handler: Callable[[JobContext], dict[str, Any] | None] = import_string(job_kind(job.kind).handler)
        result = handler(ctx) or {}
        if ctx.lease_lost.is_set():
            raise JobLeaseLost()
    except JobLeaseLost:
        logger.warning("job %s: run %s lost its lease; another run has the job", job_id, owner)
        return LEASE_LOST
    except JobCancelled:
        return _finish(job_id, owner, Job.Status.CANCELLED, log=_line("cancelled by request"))
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row, not lost in a log
        logger.exception("job %s failed", job_id)
        return _finish(
            job_id,
            owner,
            Job.Status.FAILED,
            log=_line("failed:\n" + traceback.format_exc(limit=8)),
            error=(storage_failure(exc) or f"{type(exc).__name__}: {exc}")[:5000],
        )
    finally:
        if heartbeat is not None:
            heartbeat.stop()
    return _finish(job_id, owner, Job.Status.SUCCEEDED, result=result, follow_ups=job)


def _finish(
    job_id: int,
    owner: str,
    status: str,
    *,
    log: str = "",
    follow_ups: Job | None = None,
    **fields: Any,
) -> str:
    """Record the outcome if this run still owns the job, in one conditional UPDATE; else write nothing."""
    if status == Job.Status.SUCCEEDED:
        fields["progress_done"] = Case(
            When(progress_total__gt=0, then=F("progress_total")), default=F("progress_done")
        )
    if log:
        fields["log"] = Concat(F("log"), Value(log))
    with transaction.atomic():  # the follow-ups are queued if and only if the job is recorded as done
        done = Job.objects.filter(pk=job_id, lease_owner=owner, status=Job.Status.RUNNING).update(
            status=status, finished_at=timezone.now(), lease_owner="", **fields
        )
        if not done:
            logger.warning(
                "job %s: run %s lost its lease before recording %s; left as is", job_id, owner, status
            )
            return LEASE_LOST
        if follow_ups is not None:
            _create_follow_ups(follow_ups)
    return status


def _log_line(job_id: int, message: str) -> None:
    Job.objects.filter(pk=job_id).update(log=Concat(F("log"), Value(_line(message))))


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


# --- the sweeper ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did: jobs re-queued after a stale lease, cancelled, and sent from the outbox."""

    requeued: int = 0
    cancelled: int = 0
    sent: int = 0
    unsent: int = 0

    def to_json(self) -> dict[str, int]:
        """The task's return value and log line."""
        return asdict(self)


def jobs_sweep() -> SweepReport:
    """Re-queue running jobs whose lease went stale, cancel those asked to stop, send the outbox.

    Safe to run anywhere, any number of times at once: rows are locked one sweep at a time (SKIP LOCKED
    where the database has it), and a duplicate message only meets a live lease and returns."""
    requeued = cancelled = 0
    with transaction.atomic():
        stale = Job.objects.select_for_update(skip_locked=True).filter(_stale_running())
        for job in stale:
            was = job.lease_owner or "a run"
            if job.cancel_requested:
                job.status, job.finished_at = Job.Status.CANCELLED, timezone.now()
                job.log += _line(f"cancelled: its run ({was}) stopped heartbeating")
                cancelled += 1
            else:
                # Back to the queue: the next worker resumes it from what its run recorded.
                job.status, job.sent_at, job.send_error = Job.Status.PENDING, None, ""
                job.log += _line(f"the run {was} stopped heartbeating; queued again")
                requeued += 1
            job.lease_owner = ""
            job.save(update_fields=["status", "finished_at", "sent_at", "send_error", "log", "lease_owner"])
    sent = unsent = 0
    # The outbox: pending jobs never sent. Give a job just created time for its own on_commit send.
    grace = float(settings.JOB_PUBLISH_TIMEOUT_S) * (int(settings.JOB_PUBLISH_RETRIES) + 1) + 5
    waiting = Job.objects.filter(status=Job.Status.PENDING, sent_at__isnull=True).filter(
        ~Q(send_error="") | Q(created_at__lt=timezone.now() - timedelta(seconds=grace)) | Q(attempts__gt=0)
    )
    for job in waiting.order_by("pk")[:500]:
        if job_enqueue(job=job):
            sent += 1
        else:
            unsent += 1
            break  # the broker is down: the rest waits for the next sweep
    report = SweepReport(requeued=requeued, cancelled=cancelled, sent=sent, unsent=unsent)
    if requeued or cancelled or sent or unsent:
        logger.info("job sweep: %s", report.to_json())
    return report


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
        # Back in the outbox with no owner: enqueue marks it sent, or the sweeper sends it later.
        job.sent_at, job.send_error, job.lease_owner, job.heartbeat_at = None, "", "", None
        job.save(
            update_fields=[
                "status",
                "cancel_requested",
                "finished_at",
                "error",
                "celery_task_id",
                "sent_at",
                "send_error",
                "lease_owner",
                "heartbeat_at",
            ]
        )
        _log_line(job.pk, f"retry requested{who}{earlier}")
        transaction.on_commit(lambda: job_enqueue(job=job))
    return job
