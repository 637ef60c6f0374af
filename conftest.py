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
