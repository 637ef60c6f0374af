"""Krippendorff's alpha among judges, and per-annotator reliability (majority agreement, gold, time).

Alpha is built from the coincidence matrix, which is a sum of per-item contributions: an item with m >= 2
votes and counts n_c adds (n_c * n_k - [c == k] * n_c) / (m - 1) to cell (c, k); items with fewer than
two votes add nothing, which is how missing data is handled. Then
alpha = 1 - (n - 1) * sum(o * d) / sum(n_c * n_k * d), with n_c the coincidence marginals and d the
squared distance of the level of measurement.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .bootstrap import ItemStatistic
from .votes import (
    DEFAULT_MAJORITY_RULE,
    N_CHOICES,
    UNDEFINED,
    FloatArray,
    IntArray,
    MajorityRule,
    as_index_array,
    check_majority,
    check_votes,
    majority_vote,
    ratio,
    split_items,
    vote_counts,
)

AlphaLevel = Literal["nominal", "ordinal"]

_LOW = np.minimum.outer(np.arange(N_CHOICES), np.arange(N_CHOICES))
_HIGH = np.maximum.outer(np.arange(N_CHOICES), np.arange(N_CHOICES))


@dataclass(frozen=True)
class AnnotatorReliability:
    """Per-annotator figures, each array indexed by judge id (NaN where the annotator has no data).

    ``n_left_out`` counts the judge's votes whose leave-one-out majority was split (no single most-voted
    choice among the other judges): left out of ``n_compared`` under the strict rule, compared with a tie
    under the "tie" rule (and then 0).
    """

    n_judgments: IntArray
    n_compared: IntArray
    majority_agreement: FloatArray
    n_gold: IntArray
    gold_accuracy: FloatArray
    median_seconds: FloatArray
    n_left_out: IntArray


def item_coincidences(counts: ArrayLike) -> FloatArray:
    """Per-item contributions to the coincidence matrix, shape (n_items, 3, 3), from vote counts."""
    counts_array = np.asarray(counts, dtype=np.float64)
    totals = counts_array.sum(axis=1)
    pairs = counts_array[:, :, None] * counts_array[:, None, :]
    pairs[:, np.arange(N_CHOICES), np.arange(N_CHOICES)] -= counts_array
    # Items with a single vote have no pair to compare; their pair counts are already all zero.
    scale = np.where(totals >= 2, 1.0 / np.maximum(totals - 1, 1), 0.0)
    return pairs * scale[:, None, None]


def alpha_from_coincidences(coincidences: ArrayLike, *, level: AlphaLevel = "nominal") -> FloatArray:
    """Krippendorff's alpha of (..., 3, 3) coincidence matrices, vectorised; NaN where undefined."""
    matrix = np.asarray(coincidences, dtype=np.float64)
    marginals = matrix.sum(axis=-1)
    n_values = marginals.sum(axis=-1)
    distance = _squared_distance(marginals, level)
    observed = (matrix * distance).sum(axis=(-2, -1))
    expected = (marginals[..., :, None] * marginals[..., None, :] * distance).sum(axis=(-2, -1))
    return 1.0 - ratio((n_values - 1.0) * observed, expected)


def krippendorff_alpha(
    item: ArrayLike, choice: ArrayLike, *, n_items: int, level: AlphaLevel = "nominal"
) -> float:
    """Krippendorff's alpha of the votes, nominal or ordinal (A < tie < B); items with < 2 votes skipped."""
    coincidences = item_coincidences(vote_counts(item, choice, n_items=n_items))
    return alpha_statistic(coincidences, level=level).estimate()


def alpha_statistic(coincidences: FloatArray, *, level: AlphaLevel = "nominal") -> ItemStatistic:
    """Bootstrap-ready Krippendorff's alpha from per-item coincidences (``item_coincidences``)."""
    if level not in ("nominal", "ordinal"):
        raise ValueError(f"level must be 'nominal' or 'ordinal', got {level!r}")
    columns = np.asarray(coincidences).reshape(-1, N_CHOICES * N_CHOICES)
    return ItemStatistic(columns=columns, from_sums=partial(_alpha_from_flat_sums, level=level))


def annotator_reliability(
    item: ArrayLike,
    judge: ArrayLike,
    choice: ArrayLike,
    *,
    n_items: int,
    n_judges: int | None = None,
    gold: ArrayLike | None = None,
    seconds: ArrayLike | None = None,
    rule: MajorityRule = DEFAULT_MAJORITY_RULE,
) -> AnnotatorReliability:
    """Each judge's agreement with the leave-one-out majority (under ``rule``), gold accuracy, median seconds."""
    item_array, choice_array = check_votes(item, choice, n_items=n_items)
    judge_array = as_index_array(judge, name="judge")
    if judge_array.shape != item_array.shape:
        raise ValueError(f"judge and item differ in length: {judge_array.size} != {item_array.size}")
    if judge_array.size and judge_array.min() < 0:
        raise ValueError("judge ids must be >= 0")
    seen_judges = int(judge_array.max()) + 1 if judge_array.size else 0
    n_judges = seen_judges if n_judges is None else n_judges
    if n_judges < seen_judges:
        raise ValueError(f"n_judges={n_judges} but judge ids go up to {seen_judges - 1}")

    # The other judges' votes on the same item: the item's counts minus this vote.
    others = vote_counts(item_array, choice_array, n_items=n_items)[item_array]
    others[np.arange(item_array.size), choice_array] -= 1
    loo_majority = majority_vote(others, rule=rule)
    left_out = split_items(others) if rule == "strict" else np.zeros(item_array.size, dtype=bool)
    compared = loo_majority != UNDEFINED
    n_compared = np.bincount(judge_array[compared], minlength=n_judges)
    n_matching = np.bincount(judge_array[compared & (choice_array == loo_majority)], minlength=n_judges)

    n_gold = np.zeros(n_judges, dtype=np.int64)
    n_correct = np.zeros(n_judges, dtype=np.int64)
    if gold is not None:
        gold_array = check_majority(gold)
        if gold_array.size != n_items:
            raise ValueError(f"gold must have one entry per item ({n_items}), got {gold_array.size}")
        row_gold = gold_array[item_array]
        is_gold = row_gold != UNDEFINED
        n_gold = np.bincount(judge_array[is_gold], minlength=n_judges)
        n_correct = np.bincount(judge_array[is_gold & (choice_array == row_gold)], minlength=n_judges)

    median_seconds = np.full(n_judges, np.nan)
    if seconds is not None:
        median_seconds = _median_per_judge(judge_array, np.asarray(seconds, dtype=np.float64), n_judges)

    return AnnotatorReliability(
        n_judgments=np.bincount(judge_array, minlength=n_judges).astype(np.int64),
        n_compared=n_compared.astype(np.int64),
        majority_agreement=ratio(n_matching, n_compared),
        n_gold=n_gold.astype(np.int64),
        gold_accuracy=ratio(n_correct, n_gold),
        median_seconds=median_seconds,
        n_left_out=np.bincount(judge_array[left_out], minlength=n_judges).astype(np.int64),
    )


def _median_per_judge(judge: IntArray, seconds: FloatArray, n_judges: int) -> FloatArray:
    if seconds.shape != judge.shape:
        raise ValueError(f"seconds and judge differ in length: {seconds.size} != {judge.size}")
    timed = ~np.isnan(seconds)  # NaN means "not recorded" and is left out
    judge_timed, seconds_timed = judge[timed], seconds[timed]
    order = np.lexsort((seconds_timed, judge_timed))
    sorted_seconds = seconds_timed[order]
    per_judge = np.bincount(judge_timed, minlength=n_judges)
    starts = np.cumsum(per_judge) - per_judge
    has_times = per_judge > 0
    lower = starts[has_times] + (per_judge[has_times] - 1) // 2
    upper = starts[has_times] + per_judge[has_times] // 2
    medians = np.full(n_judges, np.nan)
    medians[has_times] = (sorted_seconds[lower] + sorted_seconds[upper]) / 2
    return medians


def _squared_distance(marginals: FloatArray, level: AlphaLevel) -> FloatArray:
    if level == "nominal":
        return np.broadcast_to(_LOW != _HIGH, (*marginals.shape[:-1], N_CHOICES, N_CHOICES)).astype(
            np.float64
        )
    # Ordinal distance between c <= k: the number of values from c to k, counting both ends as halves.
    cumulative = np.concatenate(
        [np.zeros((*marginals.shape[:-1], 1)), np.cumsum(marginals, axis=-1)], axis=-1
    )
    between = cumulative[..., _HIGH + 1] - cumulative[..., _LOW]
    return (between - (marginals[..., _LOW] + marginals[..., _HIGH]) / 2) ** 2


def _alpha_from_flat_sums(sums: FloatArray, *, level: AlphaLevel) -> FloatArray:
    return alpha_from_coincidences(sums.reshape(*sums.shape[:-1], N_CHOICES, N_CHOICES), level=level)
