"""Benchmark the labeling loop over HTTP as browsers use it: simulated crowdworkers against gunicorn + PostgreSQL.

Each simulated worker enters through a Prolific link, then labels for T seconds.

- `--mode browser` (default): the labeling page once, with the scripts, styles and images it names, then
  one htmx POST per judgment set whose answer is the next pane, and the images that pane names (shown and
  preloaded) that the worker's cache does not hold. The client asks for gzip and keeps responses for
  their Cache-Control max-age, as a browser does.
- `--mode getpost`: the older loop, a GET of the pane and a POST per set, no images or static files.

The server is what production runs: the production settings (Redis cache, cached_db sessions, persistent
connections), gunicorn from config/gunicorn_conf.py (--processes / --threads override it), static files
collected under hashed names and served by WhiteNoise, and a real PNG behind every image row (signed
local media links). Collected files and images go to --files (default .bench/), made once.

For each mode x clients x campaign size it prints sets/s, p50/p95/p99 of a set (browser: the POST;
getpost: GET + POST), server CPU ms per set (gunicorn's processes plus the PostgreSQL backends serving
the bench database, from /proc: the figure that does not depend on the rest of a shared machine),
requests and bytes received per set, how often the csrftoken cookie was set, the load average before
the run, and duplicate judgments / over-assigned pairs / counter drift from the database (all must be
0); then a table of all runs. Campaigns of each --pairs size are built once with COPY (1,500 shared image
rows combined into distinct pairs) and reused by later runs.

    .venv/bin/python bench/labeling.py                                  # browser, 1 and 32 clients, 10k and 1M pairs
    .venv/bin/python bench/labeling.py --mode browser getpost --seconds 20 --pairs 10000
    .venv/bin/python bench/labeling.py --workers 32 --rate 0 100        # saturated, then 100 sets/s offered

With no pause between sets (--rate 0) every worker always has a request in flight, so latency is the
queue in front of two cores (Little's law: latency = workers / throughput); --rate paces the workers like
people who look at each pair for a while, which is what the p95 latency aim is about.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import http.client
import io
import itertools
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
N_IMAGES = 1500  # 1500 * 1499 / 2 = 1.12M distinct pairs
ASSIGNMENT = re.compile(rb"/label/(\d+)/submit")
ASPECT = re.compile(rb'name="choice-([\w-]+)" value="left"')


def pg_url(db: str) -> str:
    return f"postgres://postgres@127.0.0.1:5432/{db}"


def ensure_database(db: str) -> None:
    with psycopg.connect(pg_url("postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db]).fetchone():
            conn.execute(f'CREATE DATABASE "{db}"')
    env = {**os.environ, "DATABASE_URL": pg_url(db), "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def build_campaign(db: str, n_pairs: int) -> tuple[int, str]:
    """Create (once) a campaign with n_pairs regular pairs plus 50 gold pairs, by COPY."""
    slug = f"bench-{n_pairs}"
    with psycopg.connect(pg_url(db), autocommit=True) as conn:
        row = conn.execute("SELECT id FROM annotate_campaign WHERE slug = %s", [slug]).fetchone()
        if row:
            return row[0], slug
        started = time.perf_counter()
        conn.execute(
            "INSERT INTO annotate_generator (name, kind, model_id, params, description, created_at) "
            "VALUES ('bench', 'imported', '', '{}', 'benchmark rows', now()) ON CONFLICT (name) DO NOTHING"
        )
        generator_id = conn.execute("SELECT id FROM annotate_generator WHERE name = 'bench'").fetchone()[0]
        prompt = conn.execute(
            "INSERT INTO annotate_prompt (text, text_sha256, source, source_id, is_unsafe, tags, meta, created_at) "
            "VALUES (%s, %s, 'bench', '', false, '[]', '{}', now()) "
            "ON CONFLICT (text_sha256) DO UPDATE SET source = 'bench' RETURNING id",
            ["three red circles above a blue square (benchmark)", "bench-" + "0" * 58],
        ).fetchone()[0]
        have = conn.execute(
            "SELECT count(*) FROM annotate_image WHERE generator_id = %s", [generator_id]
        ).fetchone()[0]
        if have < N_IMAGES:
            with conn.cursor().copy(
                "COPY annotate_image (prompt_id, generator_id, file, sha256, format, width, height, size_bytes, "
                "params, created_at) FROM STDIN"
            ) as copy:
                for i in range(have, N_IMAGES):
                    copy.write_row(
                        [
                            prompt,
                            generator_id,
                            f"images/bench/{i}.png",
                            f"bench{i:059d}",
                            "PNG",
                            512,
                            512,
                            1000,
                            "{}",
                            "now",
                        ]
                    )
        image_ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM annotate_image WHERE generator_id = %s ORDER BY id", [generator_id]
            ).fetchall()
        ]
        campaign_id = conn.execute(
            "INSERT INTO annotate_campaign (name, slug, guidelines, status, humans_per_pair, gold_rate, allow_tie, "
            "rationale_required, score_min, score_max, reservation_minutes, min_seconds_per_pair, worker_quota, "
            "flag_gold_accuracy_below, block_gold_accuracy_below, min_gold_for_status, flag_too_fast_share, "
            "completion_code, completion_url, created_at) VALUES (%s, %s, '', 'active', 3, 0.1, true, false, 1, 10, "
            "10, 0, NULL, 0, 0, 32000, 1, 'BENCH', '', now()) RETURNING id",
            [f"Benchmark {n_pairs}", slug],
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO annotate_campaign_aspects (campaign_id, aspect_id) SELECT %s, id FROM annotate_aspect",
            [campaign_id],
        )
        combos = itertools.combinations(image_ids, 2)
        buffer = io.StringIO()
        with conn.cursor().copy(
            "COPY annotate_pair (campaign_id, prompt_id, image_a_id, image_b_id, is_gold, gold_answers, "
            "slots_taken, slots_submitted, created_at) FROM STDIN"
        ) as copy:
            for i, (a, b) in enumerate(itertools.islice(combos, n_pairs + 50)):
                gold = i >= n_pairs
                answers = '{"prompt_following": "A"}' if gold else "{}"
                buffer.write(
                    f"{campaign_id}\t{prompt}\t{a}\t{b}\t{'t' if gold else 'f'}\t{answers}\t0\t0\tnow\n"
                )
                if i % 50000 == 49999:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())
        conn.execute("ANALYZE annotate_pair")
        print(
            f"built campaign {slug}: {n_pairs} pairs + 50 gold in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        return campaign_id, slug


CACHE_MAX_AGE = re.compile(r"max-age=(\d+)")
STATIC = re.compile(rb'<(?:script|link)[^>]+(?:src|href)="(/static/[^"]+)"')
IMAGE = re.compile(rb'<img src="(/media/[^"]+)"')
PRELOAD = re.compile(rb'data-preload="([^"]*)"')


class Client:
    """One simulated worker on one keep-alive HTTP/1.1 connection, with its cookies, cache and latencies.

    A few lines of asyncio streams instead of an HTTP library: fifty of these share one event loop and
    cost the machine little CPU, so the server under test keeps the cores. Like a browser it asks for gzip
    and keeps what Cache-Control lets it keep (URL until expiry), so a cached image or script is not asked
    for again; it counts every request and every byte received.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.cookies: dict[str, str] = {}
        self.cache: dict[str, float] = {}
        self.set_ms: list[float] = []
        self.sets = 0
        self.errors = 0
        self.requests = 0
        self.bytes = 0
        self.csrf_cookie_sets = 0

    async def request(
        self, method: str, path: str, body: str | None = None, htmx: bool = True
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Accept-Encoding: gzip"]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if htmx:
            lines.append("HX-Request: true")
        payload = (body or "").encode()
        if body is not None:
            lines.append("Content-Type: application/x-www-form-urlencoded")
            lines.append(f"X-CSRFToken: {self.cookies.get('csrftoken', '')}")
            lines.append(f"Content-Length: {len(payload)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        length, chunked, close, gzipped, max_age = 0, False, False, False, 0
        for line in header_lines:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                close = value.lower() == "close"
            elif name == "content-encoding":
                gzipped = value.lower() == "gzip"
            elif name == "cache-control" and (found := CACHE_MAX_AGE.search(value)):
                max_age = int(found.group(1))
            elif name == "set-cookie":
                cookie, _, _attributes = value.partition(";")
                key, _, cookie_value = cookie.partition("=")
                self.cookies[key.strip()] = cookie_value
                self.csrf_cookie_sets += key.strip() == "csrftoken"
        data = await (self._read_chunked() if chunked else self.reader.readexactly(length))
        self.requests += 1
        self.bytes += len(head) + len(data)
        if close:
            self.writer.close()
            self.writer = None
        if method == "GET" and status == 200 and max_age:
            self.cache[path] = time.monotonic() + max_age
        return status, zlib.decompress(data, 16 + zlib.MAX_WBITS) if gzipped else data

    async def fetch_uncached(self, paths: list[bytes]) -> None:
        """GET each path the cache does not hold (what a browser does for a page's images and scripts)."""
        now = time.monotonic()
        for raw in paths:
            path = html.unescape(raw.decode())
            if self.cache.get(path, 0) > now:
                continue
            status, _ = await self.request("GET", path, htmx=False)
            self.errors += status != 200

    async def _read_chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            parts.append(await self.reader.readexactly(size))
            await self.reader.readline()
        await self.reader.readline()
        return b"".join(parts)


def _answers(page: bytes, rng: random.Random) -> str:
    return urlencode(
        {f"choice-{key.decode()}": rng.choice(["left", "right", "tie"]) for key in ASPECT.findall(page)}
    )


def _page_resources(page: bytes) -> list[bytes]:
    """Scripts, styles and images a browser loads for a page or pane (preloads included)."""
    preload = PRELOAD.search(page)
    return [*STATIC.findall(page), *IMAGE.findall(page), *(preload.group(1).split() if preload else [])]


async def worker_loop(
    client: Client, slug: str, pid: str, deadline: float, rng: random.Random, interval: float, mode: str
) -> None:
    """Label until the deadline; with an interval, start a judgment set at most every `interval` seconds.

    browser: the full page once, then one POST per set whose answer is the next pane, plus the images and
    static files the page and each pane make a browser load (those it has not cached). getpost: the older
    loop, GET of the pane then POST of the answers for each set, without images or static files.
    """
    status, _ = await client.request(
        "GET", f"/c/{slug}/start?" + urlencode({"PROLIFIC_PID": pid}), htmx=False
    )
    if status != 302:
        client.errors += 1
        return
    page = b""
    if mode == "browser":
        status, page = await client.request("GET", f"/c/{slug}/label/", htmx=False)
        if status != 200:
            client.errors += 1
            return
        await client.fetch_uncached(_page_resources(page))
    # Paced workers start at random offsets on a fixed schedule (the time a person looks at the pair); a
    # set that starts late does not push the schedule back, so a slow server cannot lower the offered load.
    due = time.perf_counter() + rng.random() * interval
    while time.perf_counter() < deadline:
        if interval:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            due += interval
        started = time.perf_counter()
        if mode == "getpost":
            status, page = await client.request("GET", f"/c/{slug}/label/")
            if status != 200:
                client.errors += status != 204
                return  # nothing left for this worker
        found = ASSIGNMENT.search(page)
        if found is None:
            client.errors += 1
            return
        path = f"/c/{slug}/label/{int(found.group(1))}/submit"
        status, page = await client.request("POST", path, _answers(page, rng))
        client.set_ms.append((time.perf_counter() - started) * 1000)
        if status == 204:
            client.sets += 1
            return  # the worker is done: the answer sends them to the completion screen
        if status != 200:
            client.errors += 1
            return
        client.sets += 1
        if mode == "browser":
            await client.fetch_uncached(_page_resources(page))


def pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
        if len(values) > 1
        else float("nan")
    )


def integrity(db: str, campaign_id: int) -> dict[str, int]:
    """Duplicate judgments and pairs judged by more humans than the overlap, straight from the tables."""
    with psycopg.connect(pg_url(db)) as conn:
        duplicates = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM annotate_judgment j JOIN annotate_pair p ON p.id = j.pair_id "
            "WHERE p.campaign_id = %s GROUP BY j.pair_id, j.annotator_id, j.aspect_id, j.trial HAVING count(*) > 1) d",
            [campaign_id],
        ).fetchone()[0]
        over = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM annotate_judgment j JOIN annotate_pair p ON p.id = j.pair_id "
            "JOIN annotate_campaign c ON c.id = p.campaign_id WHERE p.campaign_id = %s AND NOT p.is_gold "
            "GROUP BY j.pair_id, c.humans_per_pair HAVING count(DISTINCT j.annotator_id) > c.humans_per_pair) o",
            [campaign_id],
        ).fetchone()[0]
        drift = conn.execute(
            "SELECT count(*) FROM annotate_pair p WHERE p.campaign_id = %s AND p.slots_submitted <> "
            "(SELECT count(*) FROM annotate_assignment a WHERE a.pair_id = p.id AND a.status = 'submitted')",
            [campaign_id],
        ).fetchone()[0]
    return {"duplicates": duplicates, "over_assigned": over, "counter_drift": drift}


def _ticks(pid: int) -> int:
    """CPU time (clock ticks) a live process and its exited children have used so far; 0 when it is gone.

    Counting exited children keeps a total steady when a database backend or gunicorn worker exits.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0
    return sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process on the machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm, rest = (entry / "stat").read_text().split("(", 1)[1].rsplit(")", 1)
            except (FileNotFoundError, ProcessLookupError):
                continue
            found.append((int(entry.name), int(rest.split()[1]), comm))
    return found


class CpuMeter:
    """CPU seconds used by the gunicorn tree, the PostgreSQL backends of the bench database, this client,
    and the whole machine.

    PostgreSQL is counted per backend serving the bench database (pg_stat_activity), so other people's
    queries on a shared machine are left out; the server keeps its connections open, so the same backends
    live through a run. Shared PostgreSQL processes (WAL writer, checkpointer) are not counted.
    """

    def __init__(self, server_pid: int, db: str) -> None:
        self.server_pid = server_pid
        self.db = db
        self.hz = os.sysconf("SC_CLK_TCK")

    def _backends(self) -> set[int]:
        with psycopg.connect(pg_url("postgres"), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [self.db]
            ).fetchall()
        return {r[0] for r in rows}

    def _sample(self, backends: set[int]) -> dict[int | str, float]:
        procs = _processes()
        server = {self.server_pid} | {pid for pid, parent, _ in procs if parent == self.server_pid}
        sample: dict[int | str, float] = {"server": sum(_ticks(pid) for pid in server) / self.hz}
        sample.update({pid: _ticks(pid) / self.hz for pid in backends})
        cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        busy = sum(int(v) for v in cpu[:8]) - int(cpu[3]) - int(cpu[4])  # all but idle and iowait
        return sample | {"machine": busy / self.hz, "client": time.process_time()}

    def __enter__(self) -> CpuMeter:
        self.before_backends = self._backends()
        self.before = self._sample(self.before_backends)
        return self

    def __exit__(self, *_exc: object) -> None:
        backends = self._backends()
        after = self._sample(backends | self.before_backends)
        # A backend started during the run counts from 0; one gone by the end is lost (reads 0 after).
        postgres = sum(
            max(0.0, after.get(pid, 0.0) - self.before.get(pid, 0.0))
            for pid in backends | self.before_backends
        )
        self.used = {k: after[k] - self.before[k] for k in ("server", "machine", "client")}
        self.used["postgres"] = postgres
        counted = sum(self.used[k] for k in ("server", "postgres", "client"))
        self.used["other"] = max(0.0, self.used["machine"] - counted)


def prepare_files(static_root: Path, media_root: Path) -> None:
    """collectstatic with the production settings, and a real PNG for every bench image row (once)."""
    env = {**os.environ, **_server_env("vp_unused", "redis://127.0.0.1:6379/9", static_root, media_root)}
    if not (static_root / "staticfiles.json").exists():
        subprocess.run([PY, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    folder = media_root / "images" / "bench"
    if len(list(folder.glob("*.png"))) >= N_IMAGES:
        return
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(N_IMAGES):
        image = Image.new("RGB", (512, 512), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
        draw = ImageDraw.Draw(image)
        for k in range(6):
            x, y = (i * 13 + k * 71) % 400, (i * 29 + k * 43) % 400
            draw.ellipse([x, y, x + 90, y + 90], fill=((k * 40) % 256, 255 - (i % 256), (i * 7) % 256))
        image.save(folder / f"{i}.png", optimize=False)


def _server_env(db: str, redis_url: str, static_root: Path, media_root: Path) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "bench-" + secrets.token_urlsafe(40),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": pg_url(db),
        "REDIS_URL": redis_url,
        "DJANGO_STATIC_ROOT": str(static_root),
        "DJANGO_MEDIA_ROOT": str(media_root),
        "AWS_STORAGE_BUCKET_NAME": "",
        # Every simulated worker enters from 127.0.0.1: no new-participant limit for the bench.
        "CROWD_FREE_NEW_WORKERS_PER_ADDRESS": "1000000",
        "LOG_LEVEL": "WARNING",
    }


def start_server(
    db: str, port: int, processes: int, threads: int, redis_url: str, static_root: Path, media_root: Path
) -> subprocess.Popen:
    """gunicorn with config/gunicorn_conf.py and the production settings (plain HTTP on loopback, as
    behind a TLS proxy); --processes / --threads override the file's workers and threads."""
    env = {
        **os.environ,
        **_server_env(db, redis_url, static_root, media_root),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_LOG_LEVEL": "warning",
    }
    if processes:
        env["GUNICORN_WORKERS"] = str(processes)
    if threads:
        env["GUNICORN_THREADS"] = str(threads)
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "config/gunicorn_conf.py", "config.wsgi"],
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


async def _run_workers(clients: list[Client], slug: str, seconds: float, rate: float, mode: str) -> None:
    deadline = time.perf_counter() + seconds
    interval = len(clients) / rate if rate else 0.0
    loops = [
        worker_loop(c, slug, secrets.token_hex(12), deadline, random.Random(i), interval, mode)
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
    mode: str,
    server: subprocess.Popen,
) -> dict[str, Any]:
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    clients = [Client(port) for _ in range(workers)]
    started = time.perf_counter()
    with CpuMeter(server.pid, db) as meter:
        asyncio.run(_run_workers(clients, slug, seconds, rate, mode))
    elapsed = time.perf_counter() - started
    set_ms = [v for c in clients for v in c.set_ms]
    sets = sum(c.sets for c in clients)
    checks = integrity(db, campaign_id)
    cpu = meter.used
    per_set = {k: 1000 * v / max(sets, 1) for k, v in cpu.items()}
    row = {
        "mode": mode,
        "pairs": slug.removeprefix("bench-"),
        "workers": workers,
        "rate": rate,
        "sets_s": sets / elapsed,
        "p50": pct(set_ms, 50),
        "p95": pct(set_ms, 95),
        "cpu": per_set["server"] + per_set["postgres"],
        "bytes": sum(c.bytes for c in clients) / max(sets, 1),
        "requests": sum(c.requests for c in clients) / max(sets, 1),
        "load": load[0],
    }
    print(
        f"{slug} {mode}: {workers} workers, offered {f'{rate:g} sets/s' if rate else 'as fast as served'}, "
        f"{elapsed:.1f} s: {sets} judgment sets = {row['sets_s']:.1f} sets/s; "
        f"errors {sum(c.errors for c in clients)}\n"
        f"  set p50 {row['p50']:6.1f} ms  p95 {row['p95']:6.1f} ms  p99 {pct(set_ms, 99):6.1f} ms  (n={len(set_ms)})\n"
        f"  CPU ms per judgment set: gunicorn {per_set['server']:.2f}, postgres {per_set['postgres']:.2f}, "
        f"bench client {per_set['client']:.2f}, other {per_set['other']:.2f}; "
        f"machine busy {cpu['machine'] / elapsed:.2f} of {os.cpu_count()} cores\n"
        f"  per set: {row['requests']:.2f} requests, {row['bytes']:.0f} bytes received; csrftoken cookie "
        f"set {sum(c.csrf_cookie_sets for c in clients)} times\n"
        f"  duplicate judgments {checks['duplicates']}, over-assigned pairs {checks['over_assigned']}, "
        f"counter drift {checks['counter_drift']}",
        flush=True,
    )
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        "\n| mode | pairs | clients | offered | sets/s | p50 ms | p95 ms | server CPU ms/set "
        "| bytes/set | requests/set | load avg before |\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for r in rows:
        offered = f"{r['rate']:g}/s" if r["rate"] else "max"
        print(
            f"| {r['mode']} | {r['pairs']} | {r['workers']} | {offered} | {r['sets_s']:.1f} | {r['p50']:.1f} "
            f"| {r['p95']:.1f} | {r['cpu']:.2f} | {r['bytes']:.0f} | {r['requests']:.2f} | {r['load']:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 32], help="simulated crowdworkers (default 1 and 32)"
    )
    parser.add_argument("--seconds", type=float, default=30, help="duration of each run (default 30)")
    parser.add_argument("--pairs", type=int, nargs="+", default=[10_000, 1_000_000], help="campaign sizes")
    parser.add_argument(
        "--mode",
        nargs="+",
        choices=["browser", "getpost"],
        default=["browser"],
        help="browser (default): one POST per set plus images and static files; getpost: GET + POST per set",
    )
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=[0],
        help="judgment sets per second offered by all workers together; 0 (default): no pause between sets",
    )
    parser.add_argument("--db", default="vp_bench_label", help="PostgreSQL database (created if missing)")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="gunicorn worker processes (default: config/gunicorn_conf.py)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="threads per gunicorn process (default: config/gunicorn_conf.py)",
    )
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379/9", help="Redis for the server's cache and sessions"
    )
    parser.add_argument(
        "--files", type=Path, default=ROOT / ".bench", help="where collected static files and images go"
    )
    args = parser.parse_args()
    if max(args.pairs) > N_IMAGES * (N_IMAGES - 1) // 2 - 50:
        raise SystemExit("too many pairs for the shared image rows")
    static_root, media_root = args.files / "static", args.files / "media"
    prepare_files(static_root, media_root)
    ensure_database(args.db)
    campaigns = [build_campaign(args.db, n) for n in args.pairs]
    server = start_server(
        args.db, args.port, args.processes, args.threads, args.redis, static_root, media_root
    )
    rows = []
    try:
        for mode, rate, workers in itertools.product(args.mode, args.rate, args.workers):
            results = [
                run(args.db, args.port, slug, campaign_id, workers, args.seconds, rate, mode, server)
                for campaign_id, slug in campaigns
            ]
            rows += results
            if len(results) > 1:
                first, last = results[0], results[-1]
                print(
                    f"at {args.pairs[-1]} / {args.pairs[0]} pairs: sets/s {last['sets_s'] / first['sets_s']:.2f}, "
                    f"p95 {last['p95'] / first['p95']:.2f}, CPU per set {last['cpu'] / first['cpu']:.2f}",
                    flush=True,
                )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    print_table(rows)


if __name__ == "__main__":
    sys.exit(main())
