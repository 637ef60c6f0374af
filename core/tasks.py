"""Celery tasks: ids in, one service call, done. One task per queue; routing lives in settings.

Messages are acknowledged late (a worker that dies returns them to the broker), but nothing waits on
that: a job's run holds a lease, and the sweeper (``sweep_jobs``, run by Celery beat) re-queues a job whose
lease went stale and sends jobs the broker did not take (core/jobs.py).
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from core.jobs import job_run, jobs_sweep


@shared_task(bind=True, acks_late=True, time_limit=settings.DEFAULT_TASK_TIME_LIMIT)
def run_job(self, job_id: int) -> str:
    """Run a CPU job from the default queue."""
    return job_run(job_id=job_id, task_id=self.request.id or "")


@shared_task(bind=True, acks_late=True, time_limit=settings.AI_TASK_TIME_LIMIT)
def run_ai_job(self, job_id: int) -> str:
    """Run an MLLM annotation job from the ai queue (I/O-bound)."""
    return job_run(job_id=job_id, task_id=self.request.id or "")


@shared_task(
    bind=True,
    acks_late=True,
    time_limit=settings.GPU_TASK_TIME_LIMIT,
    soft_time_limit=settings.GPU_TASK_SOFT_TIME_LIMIT,
)
def run_gpu_job(self, job_id: int) -> str:
    """Run a generation or training job from the gpu queue (one at a time per worker)."""
    return job_run(job_id=job_id, task_id=self.request.id or "")


@shared_task(time_limit=300)
def sweep_jobs() -> dict[str, Any]:
    """Re-queue jobs whose lease went stale and send the outbox (Celery beat, every JOB_SWEEP_INTERVAL_S)."""
    return jobs_sweep().to_json()
