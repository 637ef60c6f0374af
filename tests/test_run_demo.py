"""`make demo`'s supervisor restarts a worker that exits instead of stopping the demo (issue 17, finding 4)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_run_demo():
    spec = importlib.util.spec_from_file_location("run_demo", ROOT / "scripts" / "run_demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_demo"] = module
    spec.loader.exec_module(module)
    return module


def exits(code: int) -> list[str]:
    return [sys.executable, "-c", f"import sys; sys.exit({code})"]


def wait_exit(child) -> None:
    child.process.wait(timeout=10)


def test_a_worker_that_exits_is_started_again_and_the_demo_goes_on(tmp_path):
    run_demo = load_run_demo()
    said: list[str] = []
    supervisor = run_demo.Supervisor(env={}, cwd=tmp_path, say=said.append)
    worker = supervisor.start(run_demo.Child("worker", exits(1), restart=True), now=0.0)
    wait_exit(worker)
    first_pid = worker.process.pid
    # It ran 100 s before it died (healthy): started again at once.
    assert supervisor.check(now=100.0) is True
    assert worker.process.pid != first_pid and "worker exited with code 1" in said[0]
    wait_exit(worker)
    # It died right after starting: the next start waits 1 s, then 2 s, ...
    assert supervisor.check(now=101.0) and worker.restart_at == 102.0
    pid = worker.process.pid
    assert supervisor.check(now=101.5) and worker.process.pid == pid  # not yet
    assert supervisor.check(now=102.0) and worker.process.pid != pid
    wait_exit(worker)
    assert supervisor.check(now=102.5) and worker.restart_at == 104.5
    supervisor.stop()


def test_the_web_server_exiting_stops_the_demo(tmp_path):
    run_demo = load_run_demo()
    said: list[str] = []
    supervisor = run_demo.Supervisor(env={}, cwd=tmp_path, say=said.append)
    sleeper = supervisor.start(
        run_demo.Child("worker", [sys.executable, "-c", "import time; time.sleep(60)"], restart=True)
    )
    web = supervisor.start(run_demo.Child("web server", exits(3), restart=False))
    wait_exit(web)
    assert supervisor.check() is False and "web server exited with code 3" in said[-1]
    started = time.monotonic()
    supervisor.stop(timeout_s=5)
    assert sleeper.process.poll() is not None and time.monotonic() - started < 30  # the child sleeps 60 s


def test_the_s3_demo_switch_points_every_process_at_the_loopback_bucket(tmp_path):
    """VP_DEMO_S3=1: a process started with the demo's environment stores files in the loopback bucket."""
    run_demo = load_run_demo()
    (tmp_path / "s3-demo.sqlite3").write_text("rows of an earlier bucket")
    server, env = run_demo.s3_demo_environment(tmp_path)
    try:
        assert not (tmp_path / "s3-demo.sqlite3").exists()
        child_env = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
        code = (
            "import django; django.setup();"
            "from django.conf import settings;"
            "from django.core.files.base import ContentFile;"
            "from django.core.files.storage import default_storage as s;"
            "print(s.save('probe/hello.txt', ContentFile(b'hi')));"
            "print(settings.CONTENT_SECURITY_POLICY)"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert f"img-src 'self' data: {server.endpoint_url}" in result.stdout
        body = server.client().get_object(Bucket=server.bucket, Key="probe/hello.txt")["Body"].read()
        assert body == b"hi"
        assert server.secret_key not in result.stdout + result.stderr
    finally:
        server.stop()
