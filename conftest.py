"""Shared pytest fixtures: the real Celery app and worker, media in a temp dir, default aspects."""

from __future__ import annotations

import pytest

pytest_plugins = ["celery.contrib.pytest"]


@pytest.fixture(autouse=True)
def _media_root(request, tmp_path):
    """Every test stores images in its own folder, so no test sees another's files."""
    # The Django-free packages' tests may run with `-p no:django`; they store nothing.
    if request.config.pluginmanager.hasplugin("django"):
        request.getfixturevalue("settings").MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(scope="session")
def celery_app():
    """The project's own Celery app (its routing and queues), pointed at the test Redis."""
    from config.celery_app import app

    return app


@pytest.fixture(scope="session")
def celery_worker_parameters():
    """The test worker consumes all three queues, like the demo worker."""
    return {"queues": ("default", "ai", "gpu"), "perform_ping_check": False, "shutdown_timeout": 30.0}


@pytest.fixture(scope="session")
def celery_worker_pool():
    # Threads, so the worker can run two jobs at once and a cancel reaches a running job.
    return "threads"


@pytest.fixture
def purged_queues(celery_app):
    """Empty the test broker's queues, so messages left by an earlier run never reach this test's worker."""
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        for name in ("default", "ai", "gpu"):
            channel.queue_declare(queue=name, durable=True, auto_delete=False)
            channel.queue_purge(name)
    yield


@pytest.fixture
def worker(purged_queues, celery_worker):
    """A real Celery worker (celery.contrib.pytest) on the real Redis broker, running in a thread."""
    return celery_worker


@pytest.fixture
def aspects(db):
    """The four default aspects (transactional tests flush the rows the data migration seeded)."""
    from pipeline.services.aspects import aspects_ensure_defaults

    return aspects_ensure_defaults()
