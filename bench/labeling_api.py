"""The REST API against the labeling page, side by side (issue 13). The page mode here is the
GET pane + POST loop of this script's first version; bench/labeling.py measures the page the way a
browser uses it (issue 15).

Benchmark the labeling loop over HTTP: N simulated crowdworkers against gunicorn + PostgreSQL.

Each simulated worker enters through a Prolific link, then loops for T seconds: GET the labeling screen
(htmx partial: "next") and POST a judgment set for the pair on it ("submit"; its response is the next
pair, so the reservation of a fresh pair happens inside submit, as in the browser). Prints judgment sets
per second, p50/p95/p99 of both requests, the CPU each part of the machine spent per judgment set
(gunicorn, PostgreSQL, Redis, this client, anything else), and counts duplicate and over-assigned
judgments from the database (both must be 0). Campaigns of each --pairs size are built once with COPY
(1,500 shared image rows combined into distinct pairs) and reused by later runs.

The server runs the production settings (Redis cache and cached_db sessions, persistent database
connections) under gunicorn's gthread worker; the workers are coroutines of one asyncio process, so the
client takes little of the two cores.

    .venv/bin/python bench/labeling_api.py                                  # 50 workers, 30 s, 10k and 1M pairs
    .venv/bin/python bench/labeling_api.py --workers 20 --seconds 10 --pairs 10000
    .venv/bin/python bench/labeling_api.py --rate 0 100                     # saturated, then 100 sets/s offered
    .venv/bin/python bench/labeling_api.py --mode page api --pairs 10000    # the page and the REST API, side by side

API mode (--mode api): each worker has its own account and personal API token (made by SQL, like the
campaigns) and loops GET /api/v1/label/<slug>/next, POST .../assignments/<id>/submit with a JSON body and
`Authorization: Bearer`, no cookies. The API's submit does not answer with the next pair, so a set is two
requests in both modes. The server runs with API_WRITE_RATE raised so the per-token limit does not cut in.

With no pause between sets (--rate 0) every worker always has a request in flight, so latency is the
queue in front of two cores (Little's law: latency = workers / throughput); --rate paces the workers like
people who look at each pair for a while, which is what the p95 latency aim is about.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
N_IMAGES = 1500  # 1500 * 1499 / 2 = 1.12M distinct pairs
ASSIGNMENT = re.compile(rb"/label/(\d+)/submit")
ASPECT = re.compile(rb'name="choice-([\w-]+)" value="left"')


# Shared with the browser-flow bench: the campaign builder, percentiles, integrity counts and CPU readings.
from labeling import (  # noqa: E402 - bench/ is on sys.path when a bench script runs
    _processes,
    _ticks,
    build_campaign,
    ensure_database,
    integrity,
    pct,
    pg_url,
)


class Client:
    """One simulated worker on one keep-alive HTTP/1.1 connection, with its cookies and latencies.

    A few lines of asyncio streams instead of an HTTP library: fifty of these share one event loop and
    cost the machine little CPU, so the server under test keeps the cores.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.cookies: dict[str, str] = {}
        self.next_ms: list[float] = []
        self.submit_ms: list[float] = []
        self.sets = 0
        self.errors = 0

    async def request(
        self,
        method: str,
        path: str,
        body: str | None = None,
        htmx: bool = True,
        token: str | None = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if htmx:
            lines.append("HX-Request: true")
        if token:
            lines.append(f"Authorization: Bearer {token}")
        payload = (body or "").encode()
        if body is not None:
            lines.append(f"Content-Type: {content_type}")
            if not token:
                lines.append(f"X-CSRFToken: {self.cookies.get('csrftoken', '')}")
            lines.append(f"Content-Length: {len(payload)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        for line in header_lines:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                close = value.lower() == "close"
            elif name == "set-cookie":
                cookie, _, _attributes = value.partition(";")
                key, _, cookie_value = cookie.partition("=")
                self.cookies[key.strip()] = cookie_value
        data = await (self._read_chunked() if chunked else self.reader.readexactly(length))
        if close:
            self.writer.close()
            self.writer = None
        return status, data

    async def _read_chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            parts.append(await self.reader.readexactly(size))
            await self.reader.readline()
        await self.reader.readline()
        return b"".join(parts)


async def paced(deadline: float, rng: random.Random, interval: float) -> AsyncIterator[None]:
    """One turn per judgment set until the deadline; with an interval, on a fixed schedule.

    Paced workers start at random offsets on a fixed schedule (the time a person looks at the pair); a set
    that starts late does not push the schedule back, so a slow server cannot lower the offered load.
    """
    due = time.perf_counter() + rng.random() * interval
    while time.perf_counter() < deadline:
        if interval:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            due += interval
        yield


async def worker_loop(
    client: Client, slug: str, pid: str, deadline: float, rng: random.Random, interval: float
) -> None:
    """Label until the deadline; with an interval, start a judgment set at most every `interval` seconds."""
    status, _ = await client.request(
        "GET", f"/c/{slug}/start?" + urlencode({"PROLIFIC_PID": pid}), htmx=False
    )
    if status != 302:
        client.errors += 1
        return
    async for _ in paced(deadline, rng, interval):
        started = time.perf_counter()
        status, page = await client.request("GET", f"/c/{slug}/label/")
        client.next_ms.append((time.perf_counter() - started) * 1000)
        found = ASSIGNMENT.search(page) if status == 200 else None
        if found is None:
            client.errors += status != 204
            return  # nothing left for this worker
        form = {
            f"choice-{key.decode()}": rng.choice(["left", "right", "tie"]) for key in ASPECT.findall(page)
        }
        started = time.perf_counter()
        path = f"/c/{slug}/label/{int(found.group(1))}/submit"
        status, _ = await client.request("POST", path, urlencode(form))
        client.submit_ms.append((time.perf_counter() - started) * 1000)
        if status in (200, 204):
            client.sets += 1
        else:
            client.errors += 1


async def api_worker_loop(
    client: Client, slug: str, token: str, deadline: float, rng: random.Random, interval: float
) -> None:
    """The same loop over the JSON labeling endpoints with a personal token (no cookies, no CSRF)."""
    async for _ in paced(deadline, rng, interval):
        started = time.perf_counter()
        status, body = await client.request("GET", f"/api/v1/label/{slug}/next", htmx=False, token=token)
        client.next_ms.append((time.perf_counter() - started) * 1000)
        task = json.loads(body).get("task") if status == 200 else None
        if task is None:
            client.errors += status != 200
            return  # nothing left for this worker
        choices = {a["key"]: rng.choice(["left", "right", "tie"]) for a in task["aspects"]}
        started = time.perf_counter()
        path = f"/api/v1/label/{slug}/assignments/{task['assignment_id']}/submit"
        status, _ = await client.request(
            "POST",
            path,
            json.dumps({"choices": choices}),
            htmx=False,
            token=token,
            content_type="application/json",
        )
        client.submit_ms.append((time.perf_counter() - started) * 1000)
        if status == 200:
            client.sets += 1
        else:
            client.errors += 1


def api_tokens(db: str, n: int) -> list[str]:
    """n worker accounts with a personal API token each (made once, by SQL; tokens are derived, not stored)."""
    tokens = [f"vps_bench{i:06d}" + "x" * 30 for i in range(n)]
    with psycopg.connect(pg_url(db), autocommit=True) as conn:
        for i, token in enumerate(tokens):
            user = conn.execute(
                "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
                "is_active, date_joined) VALUES ('!', false, %s, '', '', '', false, true, now()) "
                "ON CONFLICT (username) DO UPDATE SET is_active = true RETURNING id",
                [f"bench-api-{i}"],
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO api_apitoken (user_id, name, prefix, key_sha256, created_at) "
                "VALUES (%s, 'bench', %s, %s, now()) ON CONFLICT (key_sha256) DO NOTHING",
                [user, token[:12], hashlib.sha256(token.encode()).hexdigest()],
            )
    return tokens


class CpuMeter:
    """CPU seconds used by the gunicorn tree, PostgreSQL, Redis, this client, and the whole machine.

    PostgreSQL and Redis are counted for the whole machine (other databases' backends included), so read
    them together with `other`, the rest of the machine's busy time, which should be near 0 on a quiet box.
    """

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.hz = os.sysconf("SC_CLK_TCK")

    def _sample(self) -> dict[str, float]:
        procs = _processes()
        server = {self.server_pid} | {pid for pid, parent, _ in procs if parent == self.server_pid}
        sample = {"server": 0, "postgres": 0, "redis": 0}
        for pid, _parent, comm in procs:
            key = "server" if pid in server else "postgres" if comm == "postgres" else None
            key = key or ("redis" if comm.startswith("redis-server") else None)
            if key:
                sample[key] += _ticks(pid)
        cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        busy = sum(int(v) for v in cpu[:8]) - int(cpu[3]) - int(cpu[4])  # all but idle and iowait
        return {k: v / self.hz for k, v in {**sample, "machine": busy}.items()} | {
            "client": time.process_time()
        }

    def __enter__(self) -> CpuMeter:
        self.before = self._sample()
        return self

    def __exit__(self, *_exc: object) -> None:
        after = self._sample()
        self.used = {k: after[k] - self.before[k] for k in after}
        counted = sum(self.used[k] for k in ("server", "postgres", "redis", "client"))
        self.used["other"] = max(0.0, self.used["machine"] - counted)


def start_server(db: str, port: int, processes: int, threads: int, redis_url: str) -> subprocess.Popen:
    """gunicorn with the production settings, as deployed behind a TLS proxy (plain HTTP on loopback)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": pg_url(db),
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "API_WRITE_RATE": "100000000",  # the per-token write limit is not what is measured
        "CROWD_FREE_NEW_WORKERS_PER_ADDRESS": "100000000",  # nor the crowd-entry limit (all workers share 127.0.0.1)
        "DJANGO_STATIC_ROOT": str(ROOT / ".bench" / "static"),
    }
    # Production static storage needs its manifest: collect once, like a deploy does.
    if not (ROOT / ".bench" / "static" / "staticfiles.json").exists():
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=ROOT, env=env, check=True,
        )  # fmt: skip
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{port}", "--workers",
         str(processes), "--worker-class", "gthread", "--threads", str(threads), "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    for _ in range(100):
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            probe.request("GET", "/login/")
            if probe.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    os.killpg(server.pid, signal.SIGTERM)
    raise SystemExit("gunicorn did not start")


async def _run_workers(
    clients: list[Client], slug: str, seconds: float, rate: float, tokens: list[str] | None = None
) -> None:
    deadline = time.perf_counter() + seconds
    interval = len(clients) / rate if rate else 0.0
    if tokens:
        loops = [
            api_worker_loop(c, slug, tokens[i], deadline, random.Random(i), interval)
            for i, c in enumerate(clients)
        ]
    else:
        loops = [
            worker_loop(c, slug, secrets.token_hex(12), deadline, random.Random(i), interval)
            for i, c in enumerate(clients)
        ]
    await asyncio.gather(*loops)
    for client in clients:
        if client.writer is not None:
            client.writer.close()


def run(
    db: str,
    port: int,
    slug: str,
    campaign_id: int,
    workers: int,
    seconds: float,
    rate: float,
    server: subprocess.Popen,
    tokens: list[str] | None = None,
) -> dict[str, float]:
    clients = [Client(port) for _ in range(workers)]
    started = time.perf_counter()
    with CpuMeter(server.pid) as meter:
        asyncio.run(_run_workers(clients, slug, seconds, rate, tokens))
    elapsed = time.perf_counter() - started
    next_ms = [v for c in clients for v in c.next_ms]
    submit_ms = [v for c in clients for v in c.submit_ms]
    sets = sum(c.sets for c in clients)
    checks = integrity(db, campaign_id)
    cpu = meter.used
    per_set = {k: 1000 * v / max(sets, 1) for k, v in cpu.items()}
    print(
        f"{'api' if tokens else 'page'} {slug}: {workers} workers, offered {f'{rate:g} sets/s' if rate else 'as fast as served'}, "
        f"{elapsed:.1f} s: {sets} judgment sets = {sets / elapsed:.1f} sets/s; "
        f"errors {sum(c.errors for c in clients)}\n"
        f"  next   p50 {pct(next_ms, 50):6.1f} ms  p95 {pct(next_ms, 95):6.1f} ms  p99 {pct(next_ms, 99):6.1f} ms  (n={len(next_ms)})\n"
        f"  submit p50 {pct(submit_ms, 50):6.1f} ms  p95 {pct(submit_ms, 95):6.1f} ms  p99 {pct(submit_ms, 99):6.1f} ms  (n={len(submit_ms)})\n"
        f"  CPU ms per judgment set: gunicorn {per_set['server']:.1f}, postgres {per_set['postgres']:.1f}, "
        f"redis {per_set['redis']:.1f}, bench client {per_set['client']:.1f}, other {per_set['other']:.1f}; "
        f"machine busy {cpu['machine'] / elapsed:.2f} of {os.cpu_count()} cores\n"
        f"  duplicate judgments {checks['duplicates']}, over-assigned pairs {checks['over_assigned']}, "
        f"counter drift {checks['counter_drift']}",
        flush=True,
    )
    return {"next_p50": pct(next_ms, 50), "next_p95": pct(next_ms, 95), "submit_p50": pct(submit_ms, 50),
            "submit_p95": pct(submit_ms, 95), "sets_per_s": sets / elapsed}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=50, help="simulated crowdworkers (default 50)")
    parser.add_argument("--seconds", type=float, default=30, help="duration of each run (default 30)")
    parser.add_argument("--pairs", type=int, nargs="+", default=[10_000, 1_000_000], help="campaign sizes")
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=[0],
        help="judgment sets per second offered by all workers together; 0 (default): no pause between sets",
    )
    parser.add_argument(
        "--mode",
        nargs="+",
        choices=["page", "api"],
        default=["page"],
        help="labeling page, REST API, or both",
    )
    parser.add_argument("--db", default="vp_bench_label", help="PostgreSQL database (created if missing)")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--processes", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn process (default 4)")
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379/9", help="Redis for the server's cache and sessions"
    )
    args = parser.parse_args()
    if max(args.pairs) > N_IMAGES * (N_IMAGES - 1) // 2 - 50:
        raise SystemExit("too many pairs for the shared image rows")
    ensure_database(args.db)
    campaigns = [build_campaign(args.db, n) for n in args.pairs]
    tokens = api_tokens(args.db, args.workers) if "api" in args.mode else None
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    server = start_server(args.db, args.port, args.processes, args.threads, args.redis)
    by_mode: dict[tuple[float, str], list[dict[str, float]]] = {}
    try:
        for rate in args.rate:
            for mode in args.mode:
                results = [
                    run(args.db, args.port, slug, campaign_id, args.workers, args.seconds, rate, server,
                        tokens if mode == "api" else None)
                    for campaign_id, slug in campaigns
                ]  # fmt: skip
                by_mode[(rate, mode)] = results
                if len(results) > 1:
                    first, last = results[0], results[-1]
                    ratios = ", ".join(f"{k.replace('_', ' ')} {last[k] / first[k]:.2f}" for k in first)
                    print(f"{mode} at {args.pairs[-1]} / {args.pairs[0]} pairs: {ratios}", flush=True)
            if len(args.mode) == 2:
                for k, n in enumerate(args.pairs):
                    page, api = by_mode[(rate, "page")][k], by_mode[(rate, "api")][k]
                    ratios = ", ".join(f"{key.replace('_', ' ')} {api[key] / page[key]:.2f}" for key in page)
                    print(f"api / page at {n} pairs, rate {rate:g}: {ratios}", flush=True)
        print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
