"""Fixtures of the browser tests: headless Chromium through Playwright, and images served by the live server."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connections
from django.urls import resolve

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def served_media(settings):
    """Store images where the site's /media/ route serves them from (the route is built at import time)."""
    settings.MEDIA_ROOT = resolve("/media/x.png").kwargs["document_root"]


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are still
    # synchronous, so Django's async-safety guard is lifted for this test only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (make test installs it)")
    with playwright_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()
            # The test's own ORM calls ran while Playwright's loop was current: close that connection here,
            # or it outlives the test and the test database cannot be dropped at the end of the run.
            connections.close_all()
