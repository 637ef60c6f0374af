"""Recovery of an AI batch after a whole-worker SIGKILL: time to recovery, calls sent twice, tokens kept.

Real processes: a redis-server of its own as the broker, a Celery worker (threads pool, as in compose) and
beat, PostgreSQL, and the loopback OpenAI server in this process (its request log is the referee). The
worker is SIGKILLed (its whole process group) a third of the way through a batch; a new worker is
started at once, as compose's restart policy or `make demo` would. Printed:

* time to recovery: from the kill until the new run holds the job (lease went stale + sweeper + start)
  and until it records its first call; and the whole batch's time;
* calls sent twice, split into those in flight at the kill and those whose answer reached the worker but
  was still waiting to be written when it died (both are the price of a SIGKILL, at most 2 C: C in flight
  plus the executor's prefetch window), and recorded calls sent again (aim 0);
* tokens recorded / tokens served (aim 1.00), where served is what the server delivered to a client;
* the load average before and after (the machine is shared: read figures against it).

    .venv/bin/python bench/job_recovery.py --database-url postgres://postgres@127.0.0.1:5432/vp_bench
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from tests import processes  # noqa: E402 - process helpers shared with the life-cycle tests

KEY_ENV = "LOOPBACK_BENCH_KEY"


def setup_django(database_url: str, broker_url: str, media_root: str) -> None:
    """Test settings (DEBUG off) on the bench's own database, broker and media folder."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=database_url,
        REDIS_URL=broker_url,
        CELERY_BROKER_URL=broker_url,
        CELERY_RESULT_BACKEND=broker_url,
        DJANGO_MEDIA_ROOT=media_root,
        **{KEY_ENV: "sk-bench-not-a-real-key"},
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def campaign_with_pairs(n_pairs: int):  # noqa: ANN201 - models are imported after setup
    """The bench campaign with at least n pairs of small real images (made once, then reused)."""
    from annotate.models import Campaign
    from pipeline.services.aspects import aspects_ensure_defaults
    from tests.factories import CampaignFactory, PairFactory

    campaign = Campaign.objects.filter(slug="bench-job-recovery").first()
    if campaign is None:
        campaign = CampaignFactory(
            name="Bench job recovery", slug="bench-job-recovery", aspects=aspects_ensure_defaults()
        )
    missing = n_pairs - campaign.pairs.count()
    if missing > 0:
        print(f"making {missing} pairs (once)...", flush=True)
        for _ in range(missing):
            PairFactory(campaign=campaign)
    return campaign


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per answer at the server")
    parser.add_argument("--kill-at", type=float, default=1 / 3, help="fraction of calls recorded at the kill")
    parser.add_argument("--lease", type=float, default=10.0, help="JOB_LEASE_TIMEOUT_S of the workers")
    parser.add_argument("--sweep", type=float, default=2.0, help="JOB_SWEEP_INTERVAL_S of beat")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/vp_bench_recovery")
    parser.add_argument("--media-root", default="/tmp/vp_bench_recovery_media")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="vp-bench-recovery-"))
    redis = processes.RedisServer(workdir).start()
    setup_django(args.database_url, redis.url, args.media_root)
    from django.db.models import Min, Sum
    from django.utils import timezone

    from annotate.models import Judgment
    from core.models import Job
    from pipeline.mllm.loopback_server import LoopbackServer
    from pipeline.models import AICall, AIJudgeConfig
    from pipeline.services.annotation import annotation_start

    campaign = campaign_with_pairs(args.calls)
    env = processes.process_env(
        database_url=args.database_url,
        broker_url=redis.url,
        media_root=args.media_root,
        JOB_LEASE_TIMEOUT_S=str(args.lease),
        JOB_HEARTBEAT_INTERVAL_S=str(max(0.2, args.lease / 6)),
        JOB_SWEEP_INTERVAL_S=str(args.sweep),
    )
    children = []
    load_before = os.getloadavg()
    try:
        with LoopbackServer(latency_s=args.latency) as server:
            # A new judge (and so a new annotator) per run: judgments of an earlier run never collide.
            judge, _ = AIJudgeConfig.objects.update_or_create(
                name=f"bench-recovery-{int(time.time())}",
                defaults={
                    "provider": AIJudgeConfig.Provider.OPENAI,
                    "model": "loopback-judge",
                    "base_url": server.base_url,
                    "api_key_env": KEY_ENV,
                    "concurrency": args.concurrency,
                    "swap_trial": False,
                    "mode": AIJudgeConfig.Mode.PAIR,
                    "options": {"backoff_base_s": 0.05},
                },
            )
            first = processes.start_worker("first", env=env, log_dir=workdir)
            children += [first, processes.start_beat(env=env, log_dir=workdir)]
            processes.wait_for_log(workdir / "first.log", "ready.", timeout=120)
            job = annotation_start(
                campaign=campaign, judge_config=judge, selection="sample", sample_n=args.calls, seed=1
            )
            started = time.monotonic()
            calls = AICall.objects.filter(job=job)
            while calls.filter(status=AICall.Status.SUCCEEDED).count() < args.calls * args.kill_at:
                time.sleep(0.05)
            recorded_at_kill = set(calls.filter(status=AICall.Status.SUCCEEDED).values_list("pk", flat=True))
            processes.kill_group(first)
            killed, killed_wall, killed_at = time.monotonic(), time.time(), timezone.now()
            children.append(processes.start_worker("second", env=env, log_dir=workdir))

            takeover = None
            while True:
                row = Job.objects.get(pk=job.pk)
                if takeover is None and row.attempts >= 2 and row.status == Job.Status.RUNNING:
                    takeover = time.monotonic() - killed
                if row.is_finished:
                    break
                if time.monotonic() - killed > args.lease * 10 + 300:
                    raise SystemExit(f"job {job.pk} did not finish; logs in {workdir}")
                time.sleep(0.05)
            total_s = time.monotonic() - started
            first_after = calls.filter(finished_at__gt=killed_at).aggregate(t=Min("finished_at"))["t"]
            requests = server.chat_requests
            served = server.usage
            billed = server.billed_usage
        load_after = os.getloadavg()
    finally:
        for child in children:
            processes.kill_group(child)
        redis.stop()

    row = Job.objects.get(pk=job.pk)
    sends = Counter(r.fingerprint for r in requests)
    resent = {f for f, n in sends.items() if n > 1}
    # A re-sent call whose first answer was delivered before the kill but never recorded: the dead worker
    # got it and died before writing it (paid, lost). Any other re-send was in flight at the kill.
    delivered_before = {r.fingerprint for r in requests if r.delivered and r.received_at < killed_wall}
    recorded_then_resent = calls.filter(pk__in=recorded_at_kill, attempts__gt=1).count()
    totals = calls.aggregate(p=Sum("prompt_tokens"), c=Sum("completion_tokens"))
    recorded = (totals["p"] or 0) + (totals["c"] or 0)
    judgments = Judgment.objects.filter(ai_call__job=job).count()
    first_record_s = (first_after - killed_at).total_seconds() if first_after else float("nan")

    print(f"\njob {row.pk}: {row.status}, {row.attempts} runs, {calls.count()} calls at C={args.concurrency}, "
          f"server latency {args.latency:.2f} s; lease {args.lease:g} s, sweep every {args.sweep:g} s")  # fmt: skip
    print(f"killed the whole worker at {len(recorded_at_kill)} recorded calls")
    print(f"time to recovery: {takeover:.2f} s until the new run held the job, "
          f"{first_record_s:.2f} s until it recorded a call; batch {total_s:.1f} s in all")  # fmt: skip
    print(f"calls sent twice: {len(resent)} ({len(resent - delivered_before)} in flight at the kill, "
          f"{len(resent & delivered_before)} answered to the dead worker but unrecorded); "
          f"recorded calls sent again: {recorded_then_resent}")  # fmt: skip
    print(f"tokens recorded / served: {recorded}/{sum(served)} = {recorded / max(1, sum(served)):.4f} "
          f"(billed incl. undelivered: {sum(billed)}, ratio {recorded / max(1, sum(billed)):.4f})")  # fmt: skip
    print(f"judgments: {judgments} (calls x aspects = {calls.count() * campaign.aspects.count()})")
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} (2 cores)")  # fmt: skip
    print(f"process logs: {workdir}")


if __name__ == "__main__":
    main()
