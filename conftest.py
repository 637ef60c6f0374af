"""Shared pytest fixtures: the real Celery app and worker, media in a temp dir, default aspects."""

from __future__ import annotations

import time

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


QUEUES = ("default", "ai", "gpu")


def _purge(app) -> None:
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for name in QUEUES:
            channel.queue_declare(queue=name, durable=True, auto_delete=False)
            channel.queue_purge(name)


def _consume(app, worker, on: bool) -> None:
    """Start or stop the worker taking messages; the request runs in the worker's own thread (remote control)."""
    control = app.control.add_consumer if on else app.control.cancel_consumer
    for name in QUEUES:
        replies = control(name, destination=[worker.hostname], reply=True, timeout=10)
        assert replies, f"the test worker did not answer the {'add' if on else 'cancel'}_consumer request"


def _wait_idle(timeout: float = 300.0) -> None:
    """Wait until the worker runs nothing and holds nothing (what a warm shutdown used to wait for)."""
    from celery.worker import state

    deadline = time.monotonic() + timeout
    while state.active_requests or state.reserved_requests:
        if time.monotonic() > deadline:
            raise AssertionError(f"the test worker is still busy {timeout:.0f} s after the test")
        time.sleep(0.02)


@pytest.fixture
def purged_queues(celery_app):
    """Empty the test broker's queues, so messages left by an earlier run never reach this test's worker."""
    _purge(celery_app)
    yield


@pytest.fixture(scope="session")
def session_worker(django_db_setup, celery_app, celery_worker_pool, celery_worker_parameters):
    """One Celery worker thread for the whole run; it consumes only while a test holds the `worker` fixture.

    It depends on the test database, so it stops (and its threads' connections close) before that is dropped.
    """
    from celery.contrib.testing.worker import start_worker

    with start_worker(celery_app, pool=celery_worker_pool, **celery_worker_parameters) as started:
        _consume(celery_app, started, on=False)
        yield started


@pytest.fixture
def worker(celery_app, session_worker):
    """The real Celery worker on the real Redis broker (a thread), taking messages for this test only.

    Queues are purged before and after, and the test ends only once the worker is idle again, so nothing a
    test sent runs during another one. Tests that do not ask for it see their messages stay in the queue.
    """
    _purge(celery_app)
    _consume(celery_app, session_worker, on=True)
    try:
        yield session_worker
    finally:
        _consume(celery_app, session_worker, on=False)
        _wait_idle()
        _purge(celery_app)


@pytest.fixture(scope="session")
def tiny_sd_path(tmp_path_factory) -> str:
    """A tiny random Stable Diffusion pipeline saved on local disk, built once per run for every test."""
    from pipeline.generation.testing import build_tiny_sd_pipeline

    return build_tiny_sd_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture
def aspects(db):
    """The four default aspects (transactional tests flush the rows the data migration seeded)."""
    from pipeline.services.aspects import aspects_ensure_defaults

    return aspects_ensure_defaults()


@pytest.fixture(scope="session")
def s3_server():
    """An S3 API server on a loopback port for the whole session (moto; core/s3_loopback.py), like the
    PostgreSQL and Redis the tests run against. A test may stop() and start() it again."""
    from core.s3_loopback import LoopbackS3

    server = LoopbackS3().start()
    yield server
    server.stop()


@pytest.fixture
def s3_storage(settings, s3_server):
    """The default storage is the app's S3 storage (config.storage.PublicEndpointS3Storage) on the loopback
    server's bucket, emptied first; the CSP lets browsers load images from it, as production's settings do."""
    # The URLconf adds the local /media/ route only for a local storage: build it before switching, so a
    # session whose first test uses S3 still has it for the tests after.
    import config.urls  # noqa: F401

    if s3_server._server is None:  # a test that stopped the server failed before starting it again
        s3_server.start()
    bucket = s3_server.client()
    for listed in bucket.get_paginator("list_objects_v2").paginate(Bucket=s3_server.bucket):
        for item in listed.get("Contents", []):
            bucket.delete_object(Bucket=s3_server.bucket, Key=item["Key"])
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "config.storage.PublicEndpointS3Storage",
            "OPTIONS": s3_server.storage_options(),
        },
    }
    settings.CONTENT_SECURITY_POLICY = settings.CONTENT_SECURITY_POLICY.replace(
        "img-src 'self'", f"img-src 'self' {s3_server.endpoint_url}"
    )
    from django.core.files.storage import storages

    return storages["default"]
