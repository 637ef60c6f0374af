"""Bradley–Terry generator leaderboards from pairwise votes, with item-bootstrap intervals.

Model: P(generator i's image is preferred over j's) = sigmoid(s_i - s_j), with s the natural-log
strengths. A tie counts as half a win for each side. We maximise the log-likelihood minus a ridge
penalty ``ridge / 2 * sum(s**2)``: the penalty is a weak Gaussian prior (standard deviation
1 / sqrt(ridge) = 10 for the default 0.01) that keeps every strength finite when a generator never
loses, never plays, or sits in a part of the comparison graph that is not connected to the rest, and is
negligible next to the likelihood once a generator has a few dozen comparisons. At the optimum the
strengths already have mean 0; we centre them anyway so rounding never shifts the scale.

The fit works on the g x g matrices of summed wins and comparison counts, so its cost does not grow with
the number of votes, and B bootstrap fits run as one batched Newton iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse, stats
from scipy.special import expit

from .bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, percentile_interval, resampled_column_sums
from .votes import N_CHOICES, FloatArray, IntArray, as_index_array, check_choices

DEFAULT_RIDGE = 0.01

_MAX_NEWTON_STEPS = 100
_MAX_HALVINGS = 50
_STEP_TOLERANCE = 1e-10
# Bootstrap fits per batch, so the (batch, g, g) working arrays stay around 32 MiB each.
_BATCH_ENTRIES = 1 << 22


@dataclass(frozen=True)
class Leaderboard:
    """Centred log-strength per generator with its bootstrap percentile interval and comparison count."""

    strengths: FloatArray
    low: FloatArray
    high: FloatArray
    n_comparisons: IntArray


def comparison_columns(
    gen_a: ArrayLike,
    gen_b: ArrayLike,
    outcome: ArrayLike,
    *,
    n_generators: int,
    unit: ArrayLike | None = None,
    n_units: int | None = None,
) -> sparse.csr_matrix:
    """Per-unit wins and counts for each generator pair, sparse (n_units, 2 * g * g); unit defaults to row.

    Column ``i * g + j`` (i < j) holds generator i's wins over j (ties as 0.5), column ``g * g + i * g + j``
    the number of comparisons between them. Comparisons of a generator with itself carry no information
    about the ranking (a campaign may pair two images of one generator) and are left out.
    """
    a = as_index_array(gen_a, name="gen_a")
    b = as_index_array(gen_b, name="gen_b")
    choice = check_choices(outcome, name="outcome")
    if not a.shape == b.shape == choice.shape:
        raise ValueError(f"gen_a, gen_b and outcome differ in length: {a.size}, {b.size}, {choice.size}")
    for name, gen in (("gen_a", a), ("gen_b", b)):
        if gen.size and (gen.min() < 0 or gen.max() >= n_generators):
            raise ValueError(f"{name} must lie in [0, {n_generators}); got {gen.min()}..{gen.max()}")
    if unit is None:
        unit_array = np.arange(a.size)
        n_units = a.size
    else:
        unit_array = as_index_array(unit, name="unit")
        if unit_array.shape != a.shape:
            raise ValueError(f"unit and gen_a differ in length: {unit_array.size} != {a.size}")
        if n_units is None:
            raise ValueError("n_units is required when unit is given")
        if unit_array.size and (unit_array.min() < 0 or unit_array.max() >= n_units):
            raise ValueError(f"unit must lie in [0, {n_units}); got {unit_array.min()}..{unit_array.max()}")

    informative = a != b
    a, b, choice, unit_array = a[informative], b[informative], choice[informative], unit_array[informative]
    score_a = (N_CHOICES - 1 - choice) / (N_CHOICES - 1)  # 1 if A preferred, 0.5 tie, 0 if B preferred
    low, high = np.minimum(a, b), np.maximum(a, b)
    score_low = np.where(a == low, score_a, 1.0 - score_a)
    pair = low * n_generators + high
    n_pairs = n_generators * n_generators
    rows = np.concatenate([unit_array, unit_array])
    cols = np.concatenate([pair, n_pairs + pair])
    values = np.concatenate([score_low, np.ones(a.size)])
    # Duplicate (unit, column) entries are summed on conversion, which is exactly the aggregation we want.
    return sparse.coo_matrix((values, (rows, cols)), shape=(n_units, 2 * n_pairs)).tocsr()


def bradley_terry(
    gen_a: ArrayLike,
    gen_b: ArrayLike,
    outcome: ArrayLike,
    *,
    n_generators: int,
    ridge: float = DEFAULT_RIDGE,
) -> FloatArray:
    """Centred log-strengths of ``n_generators`` from votes where 0 = gen_a's image won, 1 tie, 2 gen_b's."""
    columns = comparison_columns(gen_a, gen_b, outcome, n_generators=n_generators)
    sums = np.asarray(columns.sum(axis=0), dtype=np.float64).reshape(-1)
    return _fit_from_sums(sums, n_generators, ridge)[0]


def bradley_terry_leaderboard(
    gen_a: ArrayLike,
    gen_b: ArrayLike,
    outcome: ArrayLike,
    *,
    n_generators: int,
    item: ArrayLike | None = None,
    n_items: int | None = None,
    ridge: float = DEFAULT_RIDGE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> Leaderboard:
    """Strengths with percentile intervals, resampling items (pairs) if ``item`` is given, else votes."""
    columns = comparison_columns(gen_a, gen_b, outcome, n_generators=n_generators, unit=item, n_units=n_items)
    observed = np.asarray(columns.sum(axis=0), dtype=np.float64).reshape(-1)
    strengths = _fit_from_sums(observed, n_generators, ridge)[0]
    resampled = resampled_column_sums(columns, n_resamples=n_resamples, seed=seed)
    batch = max(1, _BATCH_ENTRIES // max(1, n_generators * n_generators))
    fits = np.concatenate(
        [
            _fit_from_sums(resampled[start : start + batch], n_generators, ridge)
            for start in range(0, n_resamples, batch)
        ]
    )
    low, high = percentile_interval(fits, level=level)
    counts = observed[n_generators * n_generators :].reshape(n_generators, n_generators)
    n_comparisons = (counts.sum(axis=0) + counts.sum(axis=1)).astype(np.int64)
    return Leaderboard(strengths=strengths, low=low, high=high, n_comparisons=n_comparisons)


def item_comparison_columns(
    item_gen_a: ArrayLike,
    item_gen_b: ArrayLike,
    item: ArrayLike,
    outcome: ArrayLike,
    *,
    n_generators: int,
) -> tuple[FloatArray, IntArray]:
    """Per-item (wins of the lower-numbered generator, comparisons) and each item's generator-pair group.

    For designs where every item compares one fixed pair of generators (a pair of images), this is the
    dense per-item form of ``comparison_columns``: bootstrap it with ``resampled_sums_with_groups`` using the
    returned group (``low * g + high``) and fit with ``leaderboard_from_pair_sums``. Items comparing a
    generator with itself get zero columns, as in ``comparison_columns``.
    """
    gen_a = as_index_array(item_gen_a, name="item_gen_a")
    gen_b = as_index_array(item_gen_b, name="item_gen_b")
    item_array = as_index_array(item, name="item")
    choice = check_choices(outcome, name="outcome")
    if gen_a.shape != gen_b.shape:
        raise ValueError(f"item_gen_a and item_gen_b differ in length: {gen_a.size} != {gen_b.size}")
    if item_array.shape != choice.shape:
        raise ValueError(f"item and outcome differ in length: {item_array.size} != {choice.size}")
    n_items = gen_a.size
    for name, gen in (("item_gen_a", gen_a), ("item_gen_b", gen_b)):
        if gen.size and (gen.min() < 0 or gen.max() >= n_generators):
            raise ValueError(f"{name} must lie in [0, {n_generators}); got {gen.min()}..{gen.max()}")
    low, high = np.minimum(gen_a, gen_b), np.maximum(gen_a, gen_b)
    score_a = (N_CHOICES - 1 - choice) / (N_CHOICES - 1)
    score_low = np.where(gen_a[item_array] == low[item_array], score_a, 1.0 - score_a)
    informative = (low != high)[item_array]
    wins = np.bincount(item_array[informative], weights=score_low[informative], minlength=n_items)
    counts = np.bincount(item_array[informative], minlength=n_items).astype(np.float64)
    return np.column_stack([wins, counts]), (low * n_generators + high).astype(np.int64)


def leaderboard_from_pair_sums(
    observed: ArrayLike,
    resampled: ArrayLike,
    *,
    n_generators: int,
    ridge: float = DEFAULT_RIDGE,
    level: float = DEFAULT_LEVEL,
) -> Leaderboard:
    """Leaderboard from per-generator-pair (wins of lower, comparisons) sums: observed (g*g, 2), resampled (B, g*g, 2)."""
    g = n_generators
    observed_array = np.asarray(observed, dtype=np.float64).reshape(g * g, 2)
    resampled_array = np.asarray(resampled, dtype=np.float64).reshape(-1, g * g, 2)
    upper = np.triu(np.ones((g, g), dtype=bool), k=1).ravel()

    def flat(sums: FloatArray) -> FloatArray:
        # The column layout of comparison_columns: wins of the lower generator, then comparison counts.
        kept = sums * upper[:, None]
        return np.concatenate([kept[..., 0], kept[..., 1]], axis=-1)

    strengths = _fit_from_sums(flat(observed_array), g, ridge)[0]
    batch = max(1, _BATCH_ENTRIES // max(1, g * g))
    flat_resampled = flat(resampled_array)
    fits = np.concatenate(
        [
            _fit_from_sums(flat_resampled[start : start + batch], g, ridge)
            for start in range(0, flat_resampled.shape[0], batch)
        ]
    )
    low, high = percentile_interval(fits, level=level)
    counts = (observed_array[:, 1] * upper).reshape(g, g)
    n_comparisons = (counts.sum(axis=0) + counts.sum(axis=1)).astype(np.int64)
    return Leaderboard(strengths=strengths, low=low, high=high, n_comparisons=n_comparisons)


def kendall_tau(first: ArrayLike, second: ArrayLike) -> float:
    """Kendall's tau-b between two score vectors over the same generators (e.g. human vs AI strengths)."""
    return float(stats.kendalltau(first, second).statistic)


def win_probability(strengths: ArrayLike) -> FloatArray:
    """Matrix of modelled P(row generator beats column generator) from log-strengths."""
    s = np.asarray(strengths, dtype=np.float64)
    return expit(s[:, None] - s[None, :])


def _fit_from_sums(sums: FloatArray, n_generators: int, ridge: float) -> FloatArray:
    # sums: (..., 2 * g * g) column sums from comparison_columns -> (batch, g) strengths.
    g = n_generators
    flat = sums.reshape(-1, 2 * g * g)
    wins_low = flat[:, : g * g].reshape(-1, g, g)
    counts_upper = flat[:, g * g :].reshape(-1, g, g)
    wins = wins_low + np.swapaxes(counts_upper - wins_low, 1, 2)
    counts = counts_upper + np.swapaxes(counts_upper, 1, 2)
    return fit_strengths(wins, counts, ridge=ridge)


def fit_strengths(wins: ArrayLike, counts: ArrayLike, *, ridge: float = DEFAULT_RIDGE) -> FloatArray:
    """Ridge-penalised Bradley–Terry fit for a batch of (B, g, g) win and symmetric count matrices."""
    if ridge <= 0:
        # Without a penalty the strengths are only defined up to a shift and can run to infinity.
        raise ValueError(f"ridge must be > 0, got {ridge}")
    wins_array = np.asarray(wins, dtype=np.float64)
    counts_array = np.asarray(counts, dtype=np.float64)
    batch, g = wins_array.shape[0], wins_array.shape[-1]
    ridge_matrix = ridge * np.eye(g)
    theta = np.zeros((batch, g))
    objective = _log_posterior(theta, wins_array, ridge)
    for _ in range(_MAX_NEWTON_STEPS):
        p_win = expit(theta[:, :, None] - theta[:, None, :])
        gradient = (wins_array - counts_array * p_win).sum(axis=-1) - ridge * theta
        curvature = counts_array * p_win * (1.0 - p_win)
        # Negative Hessian: a weighted graph Laplacian plus ridge * I, so always positive definite.
        precision = -curvature + ridge_matrix
        precision[:, np.arange(g), np.arange(g)] += curvature.sum(axis=-1)
        step = np.linalg.solve(precision, gradient[..., None])[..., 0]
        # Plain Newton can overshoot when a generator wins (almost) everything; halve those steps.
        size = np.ones(batch)
        for _ in range(_MAX_HALVINGS):
            candidate = theta + size[:, None] * step
            candidate_objective = _log_posterior(candidate, wins_array, ridge)
            worse = candidate_objective < objective - 1e-12 * (1.0 + np.abs(objective))
            if not worse.any():
                break
            size = np.where(worse, size / 2, size)
        moved = np.abs(candidate - theta).max() if theta.size else 0.0
        theta, objective = candidate, candidate_objective
        if moved < _STEP_TOLERANCE:
            break
    return theta - theta.mean(axis=-1, keepdims=True)


def _log_posterior(theta: FloatArray, wins: FloatArray, ridge: float) -> FloatArray:
    log_p_win = -np.logaddexp(0.0, theta[:, None, :] - theta[:, :, None])
    return (wins * log_p_win).sum(axis=(-2, -1)) - ridge / 2 * (theta**2).sum(axis=-1)
