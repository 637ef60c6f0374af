"""Benchmark the embedded default (`make demo`: SQLite, embedded broker, worker, web server) under a study's load.

Starts the demo exactly as `make demo` does (scripts/run_demo.py: migrate, Celery worker, seed, web
server) on a fresh SQLite file in a temporary folder, waits until the demo's own jobs (rendering images,
the simulated AI judge) are done, adds a campaign of --pairs regular pairs (plus 50 gold pairs), and then
lets N simulated crowdworkers label for T seconds: each enters through a Prolific link, then loops GET
the labeling screen ("next", an htmx partial) and POST a judgment set ("submit"), as fast as served.

Prints requests, errors (any answer other than the expected one, entries included), judgment sets per
second, p50/p95/p99 of next and submit, the CPU the demo's processes spent per judgment set, the load
average before and after, and from the database: duplicate judgments and over-assigned pairs (both must
be 0) and counter drift.

    .venv/bin/python bench/embedded_load.py                      # 50 workers, 30 s, 10,000 pairs
    .venv/bin/python bench/embedded_load.py --workers 20 --seconds 10

The 50 simulated participants all come from 127.0.0.1, so the run raises the per-address limit on new
crowd participants (CROWD_FREE_NEW_WORKERS_PER_ADDRESS) for the server it starts: 50 real participants
come from 50 networks. Nothing else differs from `make demo`.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import random
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench")]

from labeling import ASPECT, ASSIGNMENT, Client, pct  # noqa: E402 - the HTTP client of the PostgreSQL bench

PY = sys.executable

BUILD_CAMPAIGN = """
import itertools
from annotate.models import Aspect, Campaign, Generator, Image, Pair, Prompt
from annotate.services.prompts import prompt_text_key
n_pairs, n_images = {n_pairs}, {n_images}
generator, _ = Generator.objects.get_or_create(name="bench", defaults={{"kind": "imported"}})
text = "three red circles above a blue square (benchmark)"
prompt, _ = Prompt.objects.get_or_create(text_sha256=prompt_text_key(text), defaults={{"text": text, "source": "bench"}})
Image.objects.bulk_create([
    Image(prompt=prompt, generator=generator, file=f"images/bench/{{i}}.png", sha256=f"bench{{i:059d}}",
          format="PNG", width=512, height=512, size_bytes=1000)
    for i in range(n_images)
])
images = list(Image.objects.filter(generator=generator).order_by("pk").values_list("pk", flat=True))
campaign = Campaign.objects.create(
    name="Benchmark", slug="bench", status="active", humans_per_pair=3, gold_rate=0.1,
    min_seconds_per_pair=0, flag_gold_accuracy_below=0, block_gold_accuracy_below=0,
    min_gold_for_status=32000, flag_too_fast_share=1, completion_code="BENCH",
)
campaign.aspects.set(Aspect.objects.all())
combos = itertools.islice(itertools.combinations(images, 2), n_pairs + 50)
Pair.objects.bulk_create(
    [Pair(campaign=campaign, prompt=prompt, image_a_id=a, image_b_id=b, is_gold=i >= n_pairs,
          gold_answers={{"prompt_following": "A"}} if i >= n_pairs else {{}})
     for i, (a, b) in enumerate(combos)],
    batch_size=2000,
)
print(campaign.pk)
"""


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _cpu_seconds(pids: set[int]) -> float:
    """CPU (user + system, with exited children) of these processes; gone ones count 0."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += sum(int(v) for v in fields[11:15])
    return total / hz


def start_demo(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """scripts/run_demo.py, as `make demo` runs it, on a fresh SQLite file and state folder."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "DJANGO_MEDIA_ROOT": str(folder / "media"),
        "DEMO_STATE_DIR": str(folder / "state"),
        "DEMO_PORT": str(port),
        "CROWD_FREE_NEW_WORKERS_PER_ADDRESS": "100000",
        "LOG_LEVEL": "WARNING",
    }
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    log = open(folder / "demo.log", "wb")  # noqa: SIM115 - closed with the process
    demo = subprocess.Popen(
        [PY, "scripts/run_demo.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if demo.poll() is not None:
            raise SystemExit(f"the demo exited with {demo.returncode}; see {folder / 'demo.log'}")
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            probe.request("GET", "/login/")
            if probe.getresponse().status == 200:
                return demo
        except OSError:
            pass
        time.sleep(0.5)
    stop_demo(demo)
    raise SystemExit("the demo's web server did not answer within 300 s")


def stop_demo(demo: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a person stops `make demo`."""
    if demo.poll() is None:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)


def wait_for_demo_jobs(db: Path, timeout: float = 600) -> None:
    """The demo's own jobs (rendering, the simulated judge) finish before the load starts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(db, timeout=30) as conn:
            open_jobs = conn.execute(
                "SELECT count(*) FROM pipeline_job WHERE status NOT IN ('succeeded', 'failed', 'cancelled')"
            ).fetchone()[0]
            any_jobs = conn.execute("SELECT count(*) FROM pipeline_job").fetchone()[0]
        if any_jobs and not open_jobs:
            return
        time.sleep(1)
    raise SystemExit("the demo's jobs did not finish")


def build_campaign(folder: Path, n_pairs: int) -> int:
    n_images = 2
    while n_images * (n_images - 1) // 2 < n_pairs + 50:
        n_images += 1
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "LOG_LEVEL": "WARNING",
    }
    code = BUILD_CAMPAIGN.format(n_pairs=n_pairs, n_images=n_images)
    out = subprocess.run(
        [PY, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def integrity(db: Path, campaign_id: int) -> dict[str, int]:
    """Duplicate judgments, pairs judged by more humans than the overlap, and counters that disagree."""
    with sqlite3.connect(db, timeout=30) as conn:
        duplicates = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM annotate_judgment j JOIN annotate_pair p ON p.id = j.pair_id "
            "WHERE p.campaign_id = ? GROUP BY j.pair_id, j.annotator_id, j.aspect_id, j.trial HAVING count(*) > 1)",
            [campaign_id],
        ).fetchone()[0]
        over = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM annotate_judgment j JOIN annotate_pair p ON p.id = j.pair_id "
            "JOIN annotate_campaign c ON c.id = p.campaign_id WHERE p.campaign_id = ? AND NOT p.is_gold "
            "GROUP BY j.pair_id, c.humans_per_pair HAVING count(DISTINCT j.annotator_id) > c.humans_per_pair)",
            [campaign_id],
        ).fetchone()[0]
        drift = conn.execute(
            "SELECT count(*) FROM annotate_pair p WHERE p.campaign_id = ? AND p.slots_submitted <> "
            "(SELECT count(*) FROM annotate_assignment a WHERE a.pair_id = p.id AND a.status = 'submitted')",
            [campaign_id],
        ).fetchone()[0]
        sets = conn.execute(
            "SELECT count(*) FROM annotate_assignment WHERE campaign_id = ? AND status = 'submitted'",
            [campaign_id],
        ).fetchone()[0]
    return {"duplicates": duplicates, "over_assigned": over, "counter_drift": drift, "stored_sets": sets}


async def crowd_worker(client: Client, pid: str, deadline: float, rng: random.Random) -> None:
    """Enter through a Prolific link, then next/submit until the deadline; an error does not stop the worker."""
    client.requests = 1  # type: ignore[attr-defined]
    try:
        status, _ = await client.request("GET", f"/c/bench/start?PROLIFIC_PID={pid}", htmx=False)
    except (OSError, asyncio.IncompleteReadError):
        status = 0
    if status != 302:
        client.errors += 1
        return
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            status, page = await client.request("GET", "/c/bench/label/")
        except (OSError, asyncio.IncompleteReadError):
            status, page, client.writer = 0, b"", None
        client.requests += 1  # type: ignore[attr-defined]
        client.next_ms.append((time.perf_counter() - started) * 1000)
        found = ASSIGNMENT.search(page) if status == 200 else None
        if found is None:
            client.errors += 1
            if status == 204:
                return  # nothing left for this worker: not expected with 10,000 pairs, counted
            continue
        form = {
            f"choice-{key.decode()}": rng.choice(["left", "right", "tie"]) for key in ASPECT.findall(page)
        }
        body = "&".join(f"{k}={v}" for k, v in form.items())
        started = time.perf_counter()
        try:
            status, _ = await client.request("POST", f"/c/bench/label/{int(found.group(1))}/submit", body)
        except (OSError, asyncio.IncompleteReadError):
            status, client.writer = 0, None
        client.requests += 1  # type: ignore[attr-defined]
        client.submit_ms.append((time.perf_counter() - started) * 1000)
        if status in (200, 204):
            client.sets += 1
        else:
            client.errors += 1


async def _run_workers(clients: list[Client], seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    loops = [
        crowd_worker(c, secrets.token_hex(12), deadline, random.Random(i)) for i, c in enumerate(clients)
    ]
    await asyncio.gather(*loops)
    for client in clients:
        if client.writer is not None:
            client.writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=50, help="simulated crowdworkers (default 50)")
    parser.add_argument("--seconds", type=float, default=30, help="duration of the load (default 30)")
    parser.add_argument(
        "--pairs", type=int, default=10_000, help="regular pairs in the campaign (default 10,000)"
    )
    parser.add_argument("--port", type=int, default=8797)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database, demo log)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="vp-embedded-load-"))
    print(
        f"load average before: {'{:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}; folder {folder}", flush=True
    )
    started = time.perf_counter()
    demo = start_demo(folder, args.port)
    try:
        wait_for_demo_jobs(folder / "db.sqlite3")
        campaign_id = build_campaign(folder, args.pairs)
        print(
            f"demo up, its jobs done, campaign of {args.pairs} pairs built in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        clients = [Client(args.port) for _ in range(args.workers)]
        pids = _descendants(demo.pid)
        cpu_before = _cpu_seconds(pids)
        load_start = time.perf_counter()
        asyncio.run(_run_workers(clients, args.seconds))
        elapsed = time.perf_counter() - load_start
        cpu_used = _cpu_seconds(_descendants(demo.pid) | pids) - cpu_before
        load_after = os.getloadavg()
    finally:
        stop_demo(demo)
    next_ms = [v for c in clients for v in c.next_ms]
    submit_ms = [v for c in clients for v in c.submit_ms]
    sets = sum(c.sets for c in clients)
    errors = sum(c.errors for c in clients)
    requests = sum(getattr(c, "requests", 0) for c in clients)  # entries, next, submit
    checks = integrity(folder / "db.sqlite3", campaign_id)
    print(
        f"embedded default (SQLite, scripts/run_demo.py), {args.workers} workers, {elapsed:.1f} s, {args.pairs} pairs:\n"
        f"  requests {requests}, errors {errors}; judgment sets {sets} = {sets / elapsed:.1f} sets/s "
        f"(stored {checks['stored_sets']})\n"
        f"  next   p50 {pct(next_ms, 50):6.1f} ms  p95 {pct(next_ms, 95):6.1f} ms  p99 {pct(next_ms, 99):6.1f} ms  (n={len(next_ms)})\n"
        f"  submit p50 {pct(submit_ms, 50):6.1f} ms  p95 {pct(submit_ms, 95):6.1f} ms  p99 {pct(submit_ms, 99):6.1f} ms  (n={len(submit_ms)})\n"
        f"  CPU of the demo's processes: {1000 * cpu_used / max(sets, 1):.1f} ms per judgment set "
        f"({cpu_used / elapsed:.2f} of {os.cpu_count()} cores)\n"
        f"  duplicate judgments {checks['duplicates']}, over-assigned pairs {checks['over_assigned']}, "
        f"counter drift {checks['counter_drift']}\n"
        f"  load average after: {'{:.2f} {:.2f} {:.2f}'.format(*load_after)}",
        flush=True,
    )
    if not args.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
