"""The Job row: one per background job of any kind; the pages show progress from it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.registry import job_kind_label


class Job(models.Model):
    """One background job: kind, status, progress, typed parameters, result, log, cost and cancel flag.

    ``kind`` names an entry of the job-kind registry (``core.jobs``), which apps fill from their
    AppConfig.ready(); ``params`` is the JSON form of the kind's parameters dataclass; ``state`` is what a
    handler saves to resume after a crash (a batch id, a cursor, a checkpoint path).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=16, db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    title = models.CharField(max_length=300, blank=True)
    # The model is a setting (like AUTH_USER_MODEL), so the core names no app.
    campaign = models.ForeignKey(
        settings.JOBS_CAMPAIGN_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    params = models.JSONField(default=dict, blank=True)
    follow_ups = models.JSONField(
        default=list, blank=True, help_text="Jobs to queue when this one succeeds: [{kind, params, title}]."
    )
    state = models.JSONField(default=dict, blank=True, help_text="What the handler saved to resume.")
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    cancel_requested = models.BooleanField(default=False)
    celery_task_id = models.CharField(max_length=64, blank=True)
    queue = models.CharField(max_length=16, default="default")
    attempts = models.PositiveSmallIntegerField(default=0)
    # The outbox: a job is "queued, not sent" until the broker took its message (sent_at); the sweeper
    # sends the ones the broker refused (send_error says why) once it answers again.
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the broker accepted the message.")
    send_error = models.CharField(max_length=500, blank=True)
    # The lease: the run that owns a running job and when it last said it is alive (core/jobs.py).
    lease_owner = models.CharField(max_length=200, blank=True, help_text="host:pid/run of the owning run.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table keeps the name it had when jobs lived in pipeline (moved without copying a row).
        db_table = "pipeline_job"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat")]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress_total=0) | Q(progress_done__lte=F("progress_total")),
                name="job_progress_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"Job {self.pk} {self.kind} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def is_queued_not_sent(self) -> bool:
        """A pending job whose message the broker has not taken yet (the sweeper will send it)."""
        return self.status == self.Status.PENDING and self.sent_at is None

    @property
    def lease_is_stale(self) -> bool:
        """A running job whose owner stopped heartbeating for longer than JOB_LEASE_TIMEOUT_S."""
        if self.status != self.Status.RUNNING:
            return False
        last = self.heartbeat_at or self.started_at
        return last is not None and last < timezone.now() - timedelta(seconds=settings.JOB_LEASE_TIMEOUT_S)

    @property
    def percent(self) -> int:
        if self.progress_total <= 0:
            return 100 if self.status == self.Status.SUCCEEDED else 0
        return int(100 * self.progress_done / self.progress_total)

    @property
    def kind_label(self) -> str:
        """The registered kind's label ("AI annotation"), or the raw kind if no app registers it now."""
        return job_kind_label(self.kind)
