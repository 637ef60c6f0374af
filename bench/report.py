"""Benchmark the full agreement report (PostgreSQL load + every statistic + 1000 shared bootstrap resamples).

Builds campaigns of 3 humans (of 100) + 2 AI judges per pair on 4 aspects, i.e. 20 judgments per pair, in
their own PostgreSQL database (``vp_bench_report``, dropped and recreated, migrated by Django), inserting
rows with COPY. For each size it runs the report in a fresh child process, so ``ru_maxrss`` is that size's
own peak, and prints wall time (best of --repeats), the report's own split (load / statistics /
bootstrap), peak traced memory (tracemalloc, a separate pass: numpy allocations included) and peak RSS;
then the ``krippendorff`` package's alpha (nominal + ordinal, 4 aspects, the alphas the report computes)
on the same human votes, timed alone.

    .venv/bin/python bench/report.py                       # 200k, 1M, 2M judgments
    .venv/bin/python bench/report.py --sizes 200000 --resamples 200   # quicker
    .venv/bin/python bench/report.py --reuse                          # measure again, keep the data
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
N_HUMANS = 100
N_FLAGGED = 5
HUMANS_PER_PAIR = 3
N_AI = 2
N_GENERATORS = 8
N_ASPECTS = 4
PER_PAIR = (HUMANS_PER_PAIR + N_AI) * N_ASPECTS


def django_setup(db_name: str) -> None:
    """Point Django at the benchmark database."""
    os.environ["DATABASE_URL"] = f"{SERVER}/{db_name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()


def recreate_database(db_name: str) -> None:
    """Drop and create the benchmark database (never the app's own)."""
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}"')
        conn.execute(f'CREATE DATABASE "{db_name}"')


def _copy(cursor, table: str, columns: str, lines: list[str] | str) -> None:
    data = lines if isinstance(lines, str) else "".join(lines)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for start in range(0, len(data), 1 << 24):
            copy.write(data[start : start + (1 << 24)])


def populate(size: int, seed: int) -> str:
    """A campaign with size judgments (size / 20 pairs) inserted with COPY; returns its slug."""
    from django.db import connection

    from annotate.models import Annotator, Aspect, Campaign, Generator
    from annotate.services.campaigns import campaign_create
    from pipeline.models import AIJudgeConfig
    from pipeline.services.aspects import aspects_ensure_defaults
    from pipeline.services.judges import judge_annotator

    rng = np.random.default_rng(seed)
    n_pairs = size // PER_PAIR
    aspects = aspects_ensure_defaults()
    campaign = campaign_create(
        name=f"Bench {size}", slug=f"bench-{size}", aspect_keys=[a.key for a in aspects]
    )
    generators = [
        Generator.objects.get_or_create(name=f"bench-gen-{g}", defaults={"kind": "imported"})[0]
        for g in range(N_GENERATORS)
    ]
    humans = []
    from django.contrib.auth import get_user_model

    for h in range(N_HUMANS):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-human-{h}")
        status = Annotator.Status.FLAGGED if h < N_FLAGGED else Annotator.Status.ACTIVE
        humans.append(
            Annotator.objects.get_or_create(
                user=user, defaults={"kind": "human", "name": user.username, "status": status}
            )[0]
        )
    judges = []
    for a in range(N_AI):
        config, _ = AIJudgeConfig.objects.get_or_create(
            name=f"bench-ai-{a}", defaults={"provider": "simulated", "model": "sim"}
        )
        judges.append(judge_annotator(config))
    aspect_ids = [a.pk for a in Aspect.objects.order_by("order")][:N_ASPECTS]

    now = "2026-01-01 00:00:00+00"
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM annotate_prompt")
        prompt_base = cursor.fetchone()[0] + 1
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM annotate_image")
        image_base = cursor.fetchone()[0] + 1
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM annotate_pair")
        pair_base = cursor.fetchone()[0] + 1
        prompts = [
            f"{prompt_base + k}\tbench prompt {size} {k}\t{size:08x}{k:056x}\tbench\t\tf\t[]\t{{}}\t{now}\n"
            for k in range(n_pairs)
        ]
        _copy(
            cursor,
            "annotate_prompt",
            "id, text, text_sha256, source, source_id, is_unsafe, tags, meta, created_at",
            prompts,
        )
        gen_a = rng.integers(0, N_GENERATORS, n_pairs)
        gen_b = (gen_a + rng.integers(1, N_GENERATORS, n_pairs)) % N_GENERATORS
        images = []
        for k in range(n_pairs):
            for side, gen in ((0, gen_a[k]), (1, gen_b[k])):
                image_id = image_base + 2 * k + side
                images.append(
                    f"{image_id}\t{prompt_base + k}\t{generators[gen].pk}\timages/bench-{image_id}.png\t"
                    f"{image_id:064x}\tPNG\t64\t64\t100\t\\N\t{{}}\t{now}\n"
                )
        _copy(
            cursor,
            "annotate_image",
            "id, prompt_id, generator_id, file, sha256, format, width, height, size_bytes, seed, params, created_at",
            images,
        )
        gold = rng.random(n_pairs) < 0.05
        gold_json = json.dumps({aspects[0].key: "A"}).replace("\\", "\\\\")
        pairs = [
            f"{pair_base + k}\t{campaign.pk}\t{prompt_base + k}\t{image_base + 2 * k}\t{image_base + 2 * k + 1}\t"
            f"{'t' if gold[k] else 'f'}\t{gold_json if gold[k] else '{}'}\t0\t0\t{now}\n"
            for k in range(n_pairs)
        ]
        _copy(
            cursor,
            "annotate_pair",
            "id, campaign_id, prompt_id, image_a_id, image_b_id, is_gold, gold_answers, slots_taken, slots_submitted, created_at",
            pairs,
        )

        # Distinct humans per pair (random start and stride, as in bench/stats_core.py); each (pair, aspect)
        # leans towards A, tie or B and every judge draws from that lean.
        start = rng.integers(0, N_HUMANS, n_pairs)
        stride = rng.integers(1, 30, n_pairs)
        human_index = (start[:, None] + stride[:, None] * np.arange(HUMANS_PER_PAIR)) % N_HUMANS
        human_ids = np.array([h.pk for h in humans])[human_index]
        judge_ids = np.column_stack([human_ids, np.tile([j.pk for j in judges], (n_pairs, 1))])  # (pairs, 5)
        lean = rng.dirichlet([0.8, 0.3, 0.8], size=(n_pairs, N_ASPECTS))
        choice_labels = np.array(["A", "tie", "B"])
        lines: list[str] = []
        for s, aspect_id in enumerate(aspect_ids):
            cumulative = np.cumsum(lean[:, s], axis=-1)
            draws = rng.random((n_pairs, judge_ids.shape[1]))
            choices = choice_labels[(draws[..., None] > cumulative[:, None, :2]).sum(axis=-1)]
            seconds = np.round(rng.gamma(2.0, 4.0, (n_pairs, HUMANS_PER_PAIR)), 2)
            # Every judge, human or AI, sees a random side first (as AI judges do since issue 10), so the
            # position-bias figures are measured rather than "not enough data".
            orders = np.where(rng.random((n_pairs, judge_ids.shape[1])) < 0.5, "AB", "BA")
            for k in range(n_pairs):
                pair_id = pair_base + k
                row_choices = choices[k]
                row_judges = judge_ids[k]
                row_orders = orders[k]
                for j in range(judge_ids.shape[1]):
                    duration = seconds[k, j] if j < HUMANS_PER_PAIR else "\\N"
                    lines.append(
                        f"{pair_id}\t{row_judges[j]}\t{aspect_id}\t1\t{row_choices[j]}\t{row_orders[j]}\t\t{duration}\t\t{now}\n"
                    )
            _copy(
                cursor,
                "annotate_judgment",
                "pair_id, annotator_id, aspect_id, trial, choice, presented_order, rationale, duration_s, template_version, created_at",
                lines,
            )
            lines = []
        for table in ("annotate_prompt", "annotate_image", "annotate_pair"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
            )
        cursor.execute("ANALYZE")
    assert Campaign.objects.get(slug=campaign.slug).pairs.count() == n_pairs
    return campaign.slug


def measure(slug: str, resamples: int, repeats: int) -> dict[str, float]:
    """Time the report (best of repeats), trace its peak memory, and time krippendorff.alpha alone."""
    from annotate.models import Annotator, Campaign
    from scoring.report_params import ReportParameters
    from scoring.selectors import JudgmentFilter, judgment_arrays
    from scoring.services.reports import report_build

    campaign = Campaign.objects.get(slug=slug)
    params = ReportParameters(campaign_ids=(campaign.pk,), n_resamples=resamples)
    best = float("inf")
    report = None
    for _ in range(repeats):
        started = time.perf_counter()
        report = report_build(params=params)
        best = min(best, time.perf_counter() - started)
    assert report is not None

    tracemalloc.start()
    report_build(params=params)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    import krippendorff

    data = judgment_arrays(flt=JudgmentFilter(campaign_ids=(campaign.pk,)))
    kinds = dict(Annotator.objects.filter(pk__in=data.annotator_ids.tolist()).values_list("pk", "kind"))
    is_human = np.array([kinds[int(a)] == "human" for a in data.annotator_ids])
    human_rows = is_human[data.judge]
    human_judges = np.flatnonzero(is_human)
    row_of_judge = np.full(data.annotator_ids.size, -1)
    row_of_judge[human_judges] = np.arange(human_judges.size)
    matrices = []
    for s in range(data.aspect_ids.size):
        rows = human_rows & (data.aspect == s)
        matrix = np.full((human_judges.size, data.n_items), np.nan)
        matrix[row_of_judge[data.judge[rows]], data.item[rows]] = data.choice[rows]
        matrices.append(matrix)
    started = time.perf_counter()
    reference = [
        krippendorff.alpha(reliability_data=m, level_of_measurement=level)
        for m in matrices
        for level in ("nominal", "ordinal")
    ]
    kripp_s = time.perf_counter() - started
    ours = [
        a["human"][f"alpha_{level}"]["estimate"]
        for a in report["aspects"]
        for level in ("nominal", "ordinal")
    ]
    return {
        "judgments": report["totals"]["n_judgments"],
        "pairs": report["totals"]["n_pairs"],
        "report_s": best,
        "load_s": report["timings"]["load_s"],
        "statistics_s": report["timings"]["statistics_s"],
        "bootstrap_s": report["timings"]["bootstrap_s"],
        "traced_peak_mib": traced_peak / 2**20,
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "krippendorff_s": kripp_s,
        "alpha_max_abs_diff": float(np.max(np.abs(np.array(ours, dtype=float) - np.array(reference)))),
        "human_agreement": report["aspects"][0]["human"]["agreement"]["with_ties"]["estimate"],
    }


def main() -> None:
    """Create the database, insert every size, then measure each size in its own process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200000,1000000,2000000", help="judgment counts, comma-separated")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per size, best shown (default 2)")
    parser.add_argument(
        "--db-name", default="vp_bench_report", help="benchmark database (dropped and recreated)"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database and campaigns of an earlier run"
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # child process: campaign slug
    args = parser.parse_args()

    if args.measure:
        django_setup(args.db_name)
        print(json.dumps(measure(args.measure, args.resamples, args.repeats)))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    if not args.reuse:
        recreate_database(args.db_name)
    django_setup(args.db_name)
    from django.core.management import call_command

    from annotate.models import Campaign

    call_command("migrate", verbosity=0, stdout=io.StringIO())
    print(
        f"database {args.db_name}; {HUMANS_PER_PAIR} humans + {N_AI} AI judges per pair, {N_ASPECTS} aspects"
    )
    slugs = {}
    for size in sizes:
        if args.reuse and Campaign.objects.filter(slug=f"bench-{size}").exists():
            slugs[size] = f"bench-{size}"
            continue
        started = time.perf_counter()
        slugs[size] = populate(size, seed=size)
        print(f"inserted {size:>9,} judgments with COPY in {time.perf_counter() - started:6.1f} s")

    header = (
        f"{'judgments':>10} {'pairs':>7} {'report s':>9} {'load':>6} {'stats':>6} {'boot':>6} "
        f"{'traced MiB':>10} {'maxRSS MiB':>10} {'kripp. s':>9} {'s/M judg.':>9}"
    )
    print(
        f"\nfull report, {args.resamples} resamples (best of {args.repeats}); krippendorff.alpha = 8 alphas alone"
    )
    print(header)
    results = []
    for size in sizes:
        child = subprocess.run(
            [sys.executable, __file__, "--measure", slugs[size], "--resamples", str(args.resamples),
             "--repeats", str(args.repeats), "--db-name", args.db_name],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if child.returncode != 0:
            print(child.stderr)
            raise SystemExit(child.returncode)
        r = json.loads(child.stdout.strip().splitlines()[-1])
        results.append(r)
        print(
            f"{r['judgments']:>10,} {r['pairs']:>7,} {r['report_s']:>9.2f} {r['load_s']:>6.2f} {r['statistics_s']:>6.2f} "
            f"{r['bootstrap_s']:>6.2f} {r['traced_peak_mib']:>10.0f} {r['maxrss_mib']:>10.0f} {r['krippendorff_s']:>9.2f} "
            f"{r['report_s'] / r['judgments'] * 1e6:>9.2f}"
        )
    print(
        "\nalpha ours vs krippendorff, max |difference|:",
        ", ".join(f"{r['alpha_max_abs_diff']:.1e}" for r in results),
    )


if __name__ == "__main__":
    main()
