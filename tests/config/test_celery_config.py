"""Routing and limits of the three queues are what the settings say."""

from __future__ import annotations

from django.conf import settings

from config.celery_app import app
from core import tasks
from core.registry import QUEUE_TASKS, job_kinds


def routed_queue(task_name: str) -> str:
    return app.amqp.router.route({}, task_name, args=(1,), kwargs={})["queue"].name


def test_queues_exist_and_tasks_are_routed_explicitly():
    assert {q.name for q in app.conf.task_queues} == {"default", "ai", "gpu"}
    assert routed_queue("core.tasks.run_job") == "default"
    assert routed_queue("core.tasks.run_ai_job") == "ai"
    assert routed_queue("core.tasks.run_gpu_job") == "gpu"
    for queue, task_name in QUEUE_TASKS.items():
        assert routed_queue(task_name) == queue


def test_every_job_kind_names_a_known_queue():
    assert {"demo", "generate", "polish", "annotate", "report"} <= set(job_kinds())
    assert {spec.queue for spec in job_kinds().values()} <= set(QUEUE_TASKS)


def test_gpu_tasks_take_one_message_at_a_time_and_have_time_limits():
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_reject_on_worker_lost is True
    gpu = tasks.run_gpu_job
    assert gpu.acks_late is True
    assert gpu.time_limit == settings.GPU_TASK_TIME_LIMIT
    assert gpu.soft_time_limit == settings.GPU_TASK_SOFT_TIME_LIMIT
    assert gpu.soft_time_limit < gpu.time_limit
    assert tasks.run_ai_job.time_limit == settings.AI_TASK_TIME_LIMIT
    assert tasks.run_job.time_limit == settings.DEFAULT_TASK_TIME_LIMIT


def test_only_json_crosses_the_broker():
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
