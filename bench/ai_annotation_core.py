"""Benchmark the MLLM batch engine alone (no database): loopback server, fixed latency, C calls in flight.

With C requests in flight and a server latency L, no client can exceed C / L calls per second. This prints
the achieved rate, its ratio to that bound (the aim is >= 0.8 at C = 32, L = 200 ms on a 2-core machine),
and this process's CPU milliseconds per call, which covers image encoding (each request encodes two
real images from 512-px PNG files), prompt rendering, the HTTP client and answer parsing.

    .venv/bin/python bench/ai_annotation_core.py                     # server in a child process
    .venv/bin/python bench/ai_annotation_core.py --server in-process # server's CPU counted too
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.mllm import CallRequest, ImageEncoding, RequestImage, iter_batch  # noqa: E402
from pipeline.mllm.loopback_server import LoopbackServer  # noqa: E402
from pipeline.mllm.providers import OpenAICompatibleJudge, OpenAIJudgeConfig  # noqa: E402


def make_images(count: int, size: int, image_format: str) -> list[bytes]:
    """Small but real image files: gradients with noise and a shape, saved as PNG or JPEG."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        y, x = np.mgrid[0:size, 0:size]
        base = np.stack([x * 255 // size, y * 255 // size, np.full_like(x, 40 * i % 255)], axis=-1)
        noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        noisy[size // 4 : size // 2, size // 4 : size // 2] = (220, 30 * i % 255, 60)
        buffer = io.BytesIO()
        Image.fromarray(noisy).save(
            buffer, image_format, **({"quality": 90} if image_format == "JPEG" else {})
        )
        out.append(buffer.getvalue())
    return out


def requests(n: int, sources: list[bytes], max_side: int, pre_encoded: bool) -> Iterator[CallRequest]:
    """Pair requests with two image files each, encoded by the executor (part of the measured CPU).

    With ``pre_encoded`` the images are encoded once before timing, to isolate the engine's own cost.
    """
    encoding = ImageEncoding(max_side=max_side)
    encoded = [encoding.encode(s) for s in sources] if pre_encoded else None
    for i in range(n):
        a, b = i % len(sources), (i + 1) % len(sources)
        if encoded is not None:
            images = (RequestImage(f"{i}-a", encoded[a]), RequestImage(f"{i}-b", encoded[b]))
        else:
            images = (RequestImage(f"{i}-a", source=sources[a]), RequestImage(f"{i}-b", source=sources[b]))
        yield CallRequest(
            key=str(i),
            prompt=f"a red square on a gradient, number {i}",
            images=images,
            image_encoding=encoding,
        )


def start_child_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    """Start the loopback server CLI in a child process and read its URL."""
    child = subprocess.Popen(
        [sys.executable, "-m", "pipeline.mllm.loopback_server", "--port", "0", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if not line.startswith("LOOPBACK_URL "):
        child.kill()
        raise RuntimeError(f"loopback server did not start: {line!r}")
    return child, line.split(" ", 1)[1]


def cpu_seconds() -> float:
    """User + system CPU of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--image-side", type=int, default=512, help="side of the source images")
    parser.add_argument(
        "--image-format", choices=["PNG", "JPEG"], default="PNG", help="format of the source files"
    )
    parser.add_argument("--max-side", type=int, default=256, help="longest side sent to the judge")
    parser.add_argument("--server", choices=["child", "in-process"], default="child")
    parser.add_argument(
        "--pre-encoded", action="store_true", help="encode images before timing (engine only)"
    )
    args = parser.parse_args()

    sources = make_images(8, args.image_side, args.image_format)
    os.environ.setdefault("LOOPBACK_BENCH_KEY", "sk-bench-not-a-real-key")
    child = server = None
    if args.server == "child":
        child, base_url = start_child_server(args.latency)
    else:
        server = LoopbackServer(latency_s=args.latency).start()
        base_url = server.base_url
    try:
        judge = OpenAICompatibleJudge(
            OpenAIJudgeConfig(
                model="loopback-judge",
                base_url=base_url,
                api_key_env="LOOPBACK_BENCH_KEY",
                api_key_env_allowed=("LOOPBACK_BENCH_KEY",),
            )
        )
        # Warm-up: imports, connection pool, first-call costs are not what we measure.
        list(
            iter_batch(
                requests(args.concurrency, sources, args.max_side, args.pre_encoded),
                judge,
                concurrency=args.concurrency,
            )
        )
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        ok = failed = 0
        for result in iter_batch(
            requests(args.calls, sources, args.max_side, args.pre_encoded),
            judge,
            concurrency=args.concurrency,
        ):
            ok += result.ok
            failed += not result.ok
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    finally:
        if child is not None:
            child.terminate()
            child.wait(timeout=10)
        if server is not None:
            server.stop()

    bound = args.concurrency / args.latency
    rate = args.calls / wall
    images = (
        "pre-encoded" if args.pre_encoded else f"{args.image_format} {args.image_side}px -> {args.max_side}px"
    )
    print(
        f"server: {args.server}; images: {images}; calls: {args.calls} ({ok} ok, {failed} failed); C = {args.concurrency}; "
        f"latency = {args.latency * 1000:.0f} ms; cores: {os.cpu_count()}"
    )
    print(f"achieved: {rate:.1f} calls/s; bound C/latency: {bound:.1f} calls/s; ratio: {rate / bound:.2f}")
    print(
        f"CPU of this process: {cpu * 1000 / args.calls:.2f} ms per call ({cpu:.2f} s over {wall:.2f} s wall)"
    )


if __name__ == "__main__":
    main()
