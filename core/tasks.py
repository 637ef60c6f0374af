"""Celery tasks: ids in, one service call, done. One task per queue; routing lives in settings."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from core.jobs import job_run


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
