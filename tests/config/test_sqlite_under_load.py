"""The embedded default's SQLite holds concurrent crowdworkers: no "database is locked", nothing lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_sqlite_settings_use_wal_a_busy_timeout_and_immediate_transactions():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": "sqlite:////tmp/x.db",
    }
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    database = json.loads(out.stdout)
    options = database["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] >= 20
    assert "journal_mode=WAL" in options["init_command"] and "busy_timeout" in options["init_command"]


@pytest.mark.slow
def test_sixteen_threads_label_at_once_without_an_error(tmp_path):
    # Before: SQLite's deferred transactions deadlocked on the write lock and SQLite failed one of them
    # at once ("database is locked", a 500), whatever the busy timeout.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    out = subprocess.run(
        [sys.executable, "-m", "tests.config.sqlite_load", str(tmp_path), "16", "6"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["errors"] == 0 and not summary["failures"], summary
    assert summary["requests"] == 16 * (1 + 2 * 6)
    assert summary["submitted"] == 16 * 6 and summary["judgments"] == 16 * 6 * 4
