"""Benchmark the agreement-report engine (scoring.stats) alone, on synthetic judgments.

Builds 100k pairs x 5 judges (one AI judge, four of 100 humans) x 4 aspects = 2M judgments and times
the headline figures (MT-Bench agreement with/without ties, AI-vs-majority agreement and Cohen's kappa
plain/linear, Krippendorff's alpha nominal/ordinal) with 1000 item-bootstrap resamples, for one aspect
and for all four (sharing one set of resamples), then the reference ``krippendorff.alpha`` on the same
human votes of one aspect, and a Bradley–Terry leaderboard with 1000 resamples. The aim is a few seconds
on a 2-core machine. Peak memory is traced with tracemalloc in a second, untimed pass.

    .venv/bin/python bench/stats_core.py
    .venv/bin/python bench/stats_core.py --items 20000 --resamples 200   # quicker
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scoring.stats import (  # noqa: E402
    bootstrap_intervals,
    bradley_terry_leaderboard,
    headline_statistics,
    krippendorff_alpha,
)

ASPECTS = ("prompt_following", "aesthetic", "fidelity", "harmlessness")
HUMANS_PER_PAIR = 4
N_HUMANS = 100
N_GENERATORS = 8


def synthetic_judgments(n_items: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Long-format judgments of one AI judge (id 0) and humans 1..N_HUMANS on every pair and aspect."""
    rng = np.random.default_rng(seed)
    judges_per_pair = 1 + HUMANS_PER_PAIR
    # Distinct humans per pair: a random start and stride; 3 * 24 < 100 keeps the four ids apart.
    start = rng.integers(0, N_HUMANS, n_items)
    stride = rng.integers(1, 25, n_items)
    humans = 1 + (start[:, None] + stride[:, None] * np.arange(HUMANS_PER_PAIR)) % N_HUMANS
    judge_one_aspect = np.column_stack([np.zeros(n_items, dtype=np.int64), humans]).ravel()
    item_one_aspect = np.repeat(np.arange(n_items), judges_per_pair)

    n_aspects = len(ASPECTS)
    item = np.tile(item_one_aspect, n_aspects)
    judge = np.tile(judge_one_aspect, n_aspects)
    aspect = np.repeat(np.arange(n_aspects), item_one_aspect.size)
    # Each (pair, aspect) leans towards A, tie or B; every judge draws from that lean.
    lean = rng.dirichlet([0.8, 0.3, 0.8], size=(n_aspects, n_items))
    cumulative = np.cumsum(lean, axis=-1)[aspect, item]
    choice = (rng.random(item.size)[:, None] > cumulative[:, :2]).sum(axis=1)
    gen_a = rng.integers(0, N_GENERATORS, n_items)
    gen_b = (gen_a + rng.integers(1, N_GENERATORS, n_items)) % N_GENERATORS
    return {"item": item, "judge": judge, "aspect": aspect, "choice": choice, "gen_a": gen_a, "gen_b": gen_b}


def report(data: dict[str, np.ndarray], n_items: int, aspects: range, n_resamples: int) -> dict[str, Any]:
    """Headline figures with intervals for the given aspects, all sharing one set of item resamples."""
    statistics = {}
    for aspect in aspects:
        rows = data["aspect"] == aspect
        item, choice, judge = data["item"][rows], data["choice"][rows], data["judge"][rows]
        per_aspect = headline_statistics(item, choice, n_items=n_items, human=judge > 0, ai=judge == 0)
        statistics.update({f"{ASPECTS[aspect]}.{name}": stat for name, stat in per_aspect.items()})
    return bootstrap_intervals(statistics, n_resamples=n_resamples, seed=0)


def reference_alpha(data: dict[str, np.ndarray], n_items: int) -> tuple[float, float]:
    """krippendorff.alpha (nominal, ordinal) on aspect 0's human votes as a raters x pairs matrix."""
    import krippendorff

    rows = (data["aspect"] == 0) & (data["judge"] > 0)
    matrix = np.full((N_HUMANS, n_items), np.nan)
    matrix[data["judge"][rows] - 1, data["item"][rows]] = data["choice"][rows]
    return (
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"),
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal"),
    )


def naive_alpha_bootstrap(data: dict[str, np.ndarray], n_items: int, n_resamples: int) -> float:
    """Seconds per resample when each resample re-runs krippendorff.alpha (nominal) on resampled pairs."""
    import krippendorff

    rows = (data["aspect"] == 0) & (data["judge"] > 0)
    matrix = np.full((N_HUMANS, n_items), np.nan)
    matrix[data["judge"][rows] - 1, data["item"][rows]] = data["choice"][rows]
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(n_resamples):
        krippendorff.alpha(reliability_data=matrix[:, rng.integers(0, n_items, n_items)])
    return (time.perf_counter() - start) / n_resamples


def leaderboard(data: dict[str, np.ndarray], n_items: int, n_resamples: int) -> Any:
    """Bradley–Terry from aspect 0's human votes, resampling pairs."""
    rows = (data["aspect"] == 0) & (data["judge"] > 0)
    item = data["item"][rows]
    return bradley_terry_leaderboard(
        data["gen_a"][item],
        data["gen_b"][item],
        data["choice"][rows],
        n_generators=N_GENERATORS,
        item=item,
        n_items=n_items,
        n_resamples=n_resamples,
    )


def timed(label: str, work: Callable[[], Any], *, repeats: int = 3) -> Any:
    """Run ``work`` ``repeats`` times and print the best wall time."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    print(f"{label:<68s} {best:7.2f} s")
    return result


def traced_peak(work: Callable[[], Any]) -> float:
    """Peak MiB allocated (numpy included) while ``work`` runs, over what was allocated before."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    baseline, _ = tracemalloc.get_traced_memory()
    work()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (peak - baseline) / 2**20


def main() -> None:
    """Build the data, print timings, values and memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="pairs (default 100000)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs, best is shown (default 3)")
    args = parser.parse_args()
    n_items, n_resamples = args.items, args.resamples

    data = synthetic_judgments(n_items)
    print(
        f"{data['item'].size:,} judgments: {n_items:,} pairs x {1 + HUMANS_PER_PAIR} judges x {len(ASPECTS)} "
        f"aspects; {n_resamples} resamples; numpy {np.__version__}"
    )

    def one() -> dict[str, Any]:
        return report(data, n_items, range(1), n_resamples)

    def four() -> dict[str, Any]:
        return report(data, n_items, range(len(ASPECTS)), n_resamples)

    def estimates_only() -> dict[str, Any]:
        return report(data, n_items, range(len(ASPECTS)), 1)

    one_aspect = timed("one aspect: 10 figures + bootstrap", one, repeats=args.repeats)
    timed("four aspects: 40 figures + shared bootstrap", four, repeats=args.repeats)
    timed("four aspects: 40 figures, 1 resample (point estimates)", estimates_only, repeats=args.repeats)
    reference = timed(
        "krippendorff.alpha nominal + ordinal, one aspect", lambda: reference_alpha(data, n_items), repeats=1
    )
    rows = (data["aspect"] == 0) & (data["judge"] > 0)
    ours = timed(
        "scoring.stats krippendorff_alpha nominal + ordinal, one aspect",
        lambda: [
            krippendorff_alpha(data["item"][rows], data["choice"][rows], n_items=n_items, level=level)
            for level in ("nominal", "ordinal")
        ],
        repeats=args.repeats,
    )
    board = timed(
        f"Bradley–Terry, {N_GENERATORS} generators, human votes of one aspect + bootstrap",
        lambda: leaderboard(data, n_items, n_resamples),
        repeats=args.repeats,
    )

    per_resample = naive_alpha_bootstrap(data, n_items, 5)
    naive_label = f"naive bootstrap: krippendorff.alpha on each of {n_resamples} resamples (extrapolated)"
    print(f"{naive_label:<68s} {per_resample * n_resamples:7.2f} s")

    print(
        "\nalpha (ours vs krippendorff):",
        [f"{a:.12f} vs {b:.12f}" for a, b in zip(ours, reference, strict=True)],
    )
    print("one aspect, estimate [95% interval]:")
    for name, (estimate, low, high) in one_aspect.items():
        print(f"  {name:<50s} {estimate:.4f} [{low:.4f}, {high:.4f}]")
    print(
        "Bradley–Terry strengths:",
        np.round(board.strengths, 3),
        "widths:",
        np.round(board.high - board.low, 3),
    )

    print("\npeak traced memory (tracemalloc, untimed pass):")
    print(f"  one aspect + bootstrap   {traced_peak(one):8.0f} MiB")
    print(f"  four aspects + bootstrap {traced_peak(four):8.0f} MiB")
    print(f"  krippendorff.alpha       {traced_peak(lambda: reference_alpha(data, n_items)):8.0f} MiB")
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS (everything above, data included): {max_rss:.0f} MiB")


if __name__ == "__main__":
    main()
