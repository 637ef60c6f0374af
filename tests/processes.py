"""Real processes for life-cycle tests and benches: a redis-server of our own, Celery workers and beat,
the web server, each in its own process group so that a test can SIGKILL a whole worker.

Every process gets the test's database and a broker URL explicitly; nothing here reads the developer's
Redis DB or another engineer's. Used by tests/core/test_job_recovery.py and bench/job_recovery.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Short life-cycle settings for worker processes in tests: a lease goes stale after 3 s.
FAST_LIFECYCLE = {
    "JOB_LEASE_TIMEOUT_S": "3",
    "JOB_HEARTBEAT_INTERVAL_S": "0.5",
    "JOB_SWEEP_INTERVAL_S": "1",
}


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server on a spare loopback port, without persistence, that a test may stop and start."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/ensure_services.sh installs it)")
        self.binary = binary
        self.port = port or free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker URL (database 0 of this server)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start (or start again, on the same port) and wait until it answers."""
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        """Stop it at once (SIGKILL: a crash; queued messages are lost, as with no persistence)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def process_env(*, database_url: str, broker_url: str, media_root: str, **extra: str) -> dict[str, str]:
    """The environment of an app process: test settings on the given database and broker."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "REDIS_URL": broker_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_RESULT_BACKEND": broker_url,
        "DJANGO_MEDIA_ROOT": media_root,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    return env


def start(command: list[str], *, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a process in its own process group (so killing the group kills all its children)."""
    handle = log.open("ab")
    return subprocess.Popen(
        command, cwd=ROOT, env=dict(env), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )


def start_worker(
    name: str, *, env: Mapping[str, str], log_dir: Path, queues: str = "default,ai", pool: str = "threads"
) -> subprocess.Popen[bytes]:
    """A Celery worker process like the compose one (threads pool); its log is log_dir/<name>.log."""
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-P", pool, "-c", "8",
        "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "-l", "info",
    ]  # fmt: skip
    return start(command, env=env, log=log_dir / f"{name}.log")


def start_beat(*, env: Mapping[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    """Celery beat, which sends the sweeper every JOB_SWEEP_INTERVAL_S."""
    command = [
        sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "info",
        "-s", str(log_dir / "beat-schedule"), "--pidfile", "",
    ]  # fmt: skip
    return start(command, env=env, log=log_dir / "beat.log")


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Send `sig` to the process's whole group (the worker and any pool children) and reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_for_log(path: Path, text: str, timeout: float = 60.0) -> None:
    """Wait until `text` appears in a process log (a worker's "ready", beat's "Scheduler")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    tail = path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"
    raise AssertionError(f"{text!r} not in {path.name} within {timeout}s:\n{tail}")


def logs(log_dir: Path, limit: int = 3000) -> str:
    """The tail of every process log, for an assertion message."""
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-limit:]}" for p in sorted(log_dir.glob("*.log"))
    )
