"""Benchmark an AI annotation job through the whole Django path: rows in, calls out, rows written.

The loopback OpenAI server runs in a child process with a fixed latency; the job handler runs in this
process through ``core.jobs.job_run`` exactly as a worker runs it: AICall rows created in one bulk
insert, requests built lazily from rows, demo images read from disk and encoded by the executor, answers
parsed, and every result written in its own transaction (AICall update + judgments + job progress).

With C calls in flight and a latency L, no client exceeds C / L calls per second. Printed: the achieved
rate, its ratio to that bound (aim: >= 0.8 at C = 32, L = 200 ms on 2 cores), and this process's CPU
milliseconds per call (image encoding, prompt rendering, HTTP client, parsing, database writes).

    .venv/bin/python bench/ai_annotation.py                       # SQLite file in /tmp
    .venv/bin/python bench/ai_annotation.py --database-url postgres://postgres@127.0.0.1:5432/vp_bench_ai

The database is created and migrated if needed, and the demo campaign's images are rendered once and
kept, so later runs start at once (the campaign must have at least --pairs pairs).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from ai_annotation_core import cpu_seconds, start_child_server  # noqa: E402 - the engine bench's helpers


def setup_django(database_url: str, media_root: str) -> None:
    """Test settings (DEBUG off, no query log) on the benchmark's own database and media folder."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_MEDIA_ROOT"] = media_root
    # The loopback judge's fake key lives in LOOPBACK_BENCH_KEY: declare it, as an operator would.
    os.environ["AI_API_KEY_ENV_NAMES"] = "LOOPBACK_BENCH_KEY"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def demo_campaign(min_pairs: int):  # noqa: ANN201 - Django models are imported after setup
    """The demo campaign with at least ``min_pairs`` pairs (4 images per prompt: 6 pairs a prompt)."""
    from annotate.models import Generator
    from core.jobs import job_run
    from core.models import Job
    from pipeline.services.aspects import aspects_ensure_defaults
    from pipeline.services.demo import DEMO_GENERATOR, demo_campaign_seed

    aspects_ensure_defaults()
    campaign = demo_campaign_seed(n_prompts=(min_pairs + 5) // 6)
    if campaign.pairs.count() < min_pairs:
        generator = Generator.objects.get(name=DEMO_GENERATOR)
        params = {
            "campaign_id": campaign.pk,
            "generator_ids": [generator.pk],
            "images_per_prompt": 4,
            "seed": 1,
        }
        job = Job.objects.create(kind="generate", params=params, queue="default")
        print(f"rendering demo images for {campaign.prompts.count()} prompts (once)...", flush=True)
        job_run(job_id=job.pk)
    if campaign.pairs.count() < min_pairs:
        raise SystemExit(f"the demo campaign has {campaign.pairs.count()} pairs, fewer than {min_pairs}")
    return campaign


def run_job(campaign, judge, n_pairs: int, seed: int) -> tuple[float, float, dict]:  # noqa: ANN001
    """Run one annotation job of n sampled pairs with job_run; returns (wall s, CPU s, result)."""
    from core.jobs import job_run
    from core.models import Job
    from pipeline.services.annotation import annotation_params

    # The job row is made directly (job_create would also send a Celery message; no broker here).
    params = annotation_params(
        campaign=campaign, judge_config=judge, selection="sample", sample_n=n_pairs, seed=seed
    )
    job = Job.objects.create(kind="annotate", params=params.to_json(), queue="ai", campaign=campaign)
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    status = job_run(job_id=job.pk)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    job.refresh_from_db()
    if status != Job.Status.SUCCEEDED:
        raise SystemExit(f"job {job.pk} {status}: {job.error}")
    return wall, cpu, job.result


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--max-side", type=int, default=256, help="longest image side sent to the judge")
    parser.add_argument("--database-url", default="sqlite:////tmp/vp_bench_ai.sqlite3")
    parser.add_argument("--media-root", default="/tmp/vp_bench_ai_media")
    args = parser.parse_args()

    setup_django(args.database_url, args.media_root)
    from django.db import connection

    from annotate.models import Judgment
    from pipeline.models import AIJudgeConfig

    campaign = demo_campaign(args.pairs)
    os.environ["LOOPBACK_BENCH_KEY"] = "sk-bench-not-a-real-key"
    child, base_url = start_child_server(args.latency)
    try:
        judge, _ = AIJudgeConfig.objects.update_or_create(
            name="bench-loopback",
            defaults={
                "provider": AIJudgeConfig.Provider.OPENAI,
                "model": "loopback-judge",
                "base_url": base_url,
                "api_key_env": "LOOPBACK_BENCH_KEY",
                "concurrency": args.concurrency,
                "max_image_side": args.max_side,
            },
        )
        # Each run labels a fresh sample; judgments from earlier runs would only be skipped as duplicates.
        Judgment.objects.filter(annotator__ai_config=judge).delete()
        run_job(campaign, judge, args.concurrency, seed=12345)  # warm-up: imports, connections
        Judgment.objects.filter(annotator__ai_config=judge).delete()
        wall, cpu, result = run_job(campaign, judge, args.pairs, seed=1)
    finally:
        child.terminate()
        child.wait(timeout=10)

    calls = result["calls"]
    bound = args.concurrency / args.latency
    rate = calls / wall
    print(
        f"database: {connection.vendor}; calls: {calls} ({result['succeeded']} ok, {result['failed']} failed, "
        f"{result['judgments']} judgments); C = {args.concurrency}; latency = {args.latency * 1000:.0f} ms; "
        f"images: demo PNG 256px -> JPEG <= {args.max_side}px; cores: {os.cpu_count()}"
    )
    print(f"achieved: {rate:.1f} calls/s; bound C/latency: {bound:.1f} calls/s; ratio: {rate / bound:.2f}")
    print(
        f"CPU of this process: {cpu * 1000 / calls:.2f} ms per call ({cpu:.2f} s over {wall:.2f} s wall; "
        "includes work-list creation, encoding, HTTP, parsing and DB writes)"
    )


if __name__ == "__main__":
    main()
