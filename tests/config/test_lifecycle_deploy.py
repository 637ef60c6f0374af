"""The job life cycle's deployment pieces: restart policies, one beat, the sweeper's schedule, the broker
transport that survives a Redis restart (issue 17)."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings

from config.broker import RedisTransport
from config.celery_app import app

ROOT = Path(__file__).resolve().parents[2]


def test_compose_restarts_every_long_running_service_and_runs_one_beat():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("web", "worker", "gpu-worker", "beat", "postgres", "redis", "minio"):
        assert services[name].get("restart") in ("unless-stopped", "on-failure", "always"), name
    assert services["beat"]["command"].startswith("celery -A config beat")
    assert "--appendonly yes" in services["redis"]["command"]


def test_beat_sends_the_sweeper_on_the_default_queue():
    entry = app.conf.beat_schedule["sweep-jobs"]
    assert entry["task"] == "core.tasks.sweep_jobs"
    assert entry["schedule"] == settings.JOB_SWEEP_INTERVAL_S
    assert entry["options"]["queue"] == "default"
    assert "core.tasks.sweep_jobs" in app.tasks


def test_redis_brokers_use_the_transport_that_survives_a_restart():
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, RedisTransport)


def test_the_lease_outlives_several_heartbeats():
    assert settings.JOB_HEARTBEAT_INTERVAL_S * 3 <= settings.JOB_LEASE_TIMEOUT_S
    assert app.conf.task_ignore_result is True
