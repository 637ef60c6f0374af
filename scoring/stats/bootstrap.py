"""Percentile bootstrap over items, computed from per-item sufficient statistics.

Every headline statistic here is a function of *column sums* of a per-item table: agreement is
sum(agreeing pairs) / sum(pairs), Cohen's kappa comes from the summed 3x3 joint table, Krippendorff's
alpha from the summed coincidence matrix. Resampling items with replacement therefore only changes how
many times each item's row enters the sum, so one resample is ``weights @ columns`` where ``weights``
counts how often each item was drawn. We draw B x n_items weights in chunks and never touch raw rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse

from .votes import FloatArray

# Items x resamples drawn per chunk: each chunk-sized array is ~32 MiB whatever the data size.
_CHUNK_ENTRIES = 1 << 22

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95

Columns: TypeAlias = FloatArray | sparse.csr_matrix
SumsToValue: TypeAlias = Callable[[FloatArray], FloatArray]


class Interval(NamedTuple):
    """A point estimate with its bootstrap percentile interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class ItemStatistic:
    """A statistic defined by per-item columns (n_items, k) and a function of their (..., k) sums."""

    columns: Columns
    from_sums: SumsToValue

    @property
    def n_items(self) -> int:
        """Number of items (rows) the statistic is built from."""
        return int(self.columns.shape[0])

    def estimate(self) -> float:
        """The statistic on the data as observed (every item weighted once)."""
        sums = np.asarray(self.columns.sum(axis=0), dtype=np.float64).reshape(-1)
        return float(self.from_sums(sums))


def resampled_column_sums(
    columns: Columns, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> FloatArray:
    """Column sums of ``columns`` for each of ``n_resamples`` item resamples: a (B, k) array."""
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    n_items, n_columns = columns.shape
    sums = np.zeros((n_resamples, n_columns))
    if n_items == 0:
        return sums
    rng = np.random.default_rng(seed)
    dense = None if sparse.issparse(columns) else np.asarray(columns, dtype=np.float64)
    per_chunk = max(1, min(n_resamples, _CHUNK_ENTRIES // n_items))
    # The loop runs over chunks of resamples (tens of them), never over items or rows. Drawing the same
    # stream in any chunking gives the same indices, so results depend only on (seed, n_items, B).
    for start in range(0, n_resamples, per_chunk):
        stop = min(start + per_chunk, n_resamples)
        draws = rng.integers(0, n_items, size=(stop - start, n_items))
        draws += (np.arange(stop - start) * n_items)[:, None]
        counts = np.bincount(draws.ravel(), minlength=draws.size)
        del draws  # keep at most two chunk-sized arrays alive
        weights = counts.reshape(stop - start, n_items).astype(np.float64)
        del counts
        if dense is not None:
            sums[start:stop] = weights @ dense
        else:
            sums[start:stop] = np.asarray((columns.T @ weights.T).T)
    return sums


def resampled_sums_with_groups(
    columns: FloatArray,
    grouped: FloatArray,
    *,
    group: ArrayLike,
    n_groups: int,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    sparse_columns: Columns | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Resampled column sums of ``columns`` (B, k) and per-group sums of ``grouped`` (B, n_groups, k2).

    ``sparse_columns`` (n_items, k3), columns that are mostly zero (one annotator's items among many), are
    summed on the same draws as a sparse product and appended after ``columns``' k: the first result is
    then (B, k + k3).

    The draws are those of ``resampled_column_sums`` for the same seed (the first result equals it, up to
    rounding), so figures bootstrapped here and elsewhere share their resamples. Groups feed statistics
    that need sums per stratum, e.g. Bradley–Terry wins per generator pair when each item belongs to one
    generator pair; summing the grouped result over groups gives its plain column sums.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    plain = np.asarray(columns, dtype=np.float64)
    stratified = np.asarray(grouped, dtype=np.float64)
    n_items = plain.shape[0]
    group_array = np.asarray(group, dtype=np.int64)
    if stratified.shape[0] != n_items or group_array.shape != (n_items,):
        raise ValueError(
            f"columns, grouped and group must have {n_items} rows; got {stratified.shape[0]}, {group_array.shape}"
        )
    if n_items and (group_array.min() < 0 or group_array.max() >= n_groups):
        raise ValueError(f"group must lie in [0, {n_groups}); got {group_array.min()}..{group_array.max()}")
    extra = sparse.csr_matrix((n_items, 0)) if sparse_columns is None else sparse.csr_matrix(sparse_columns)
    if extra.shape[0] != n_items:
        raise ValueError(f"sparse_columns must have {n_items} rows; got {extra.shape[0]}")
    n_plain = plain.shape[1]
    sums = np.zeros((n_resamples, n_plain + extra.shape[1]))
    group_sums = np.zeros((n_resamples, n_groups, stratified.shape[1]))
    if n_items == 0:
        return sums, group_sums
    # Items sorted by group make each group a contiguous block of rows: one matrix product per group.
    order = np.argsort(group_array, kind="stable")
    bounds = np.searchsorted(group_array[order], np.arange(n_groups + 1))
    sorted_plain, sorted_grouped = plain[order], stratified[order]
    # Transposed once, so each chunk is one (k3, n) sparse times (n, chunk) dense product.
    sorted_extra_t = extra[order].T.tocsr() if extra.shape[1] else None
    present = np.flatnonzero(bounds[1:] > bounds[:-1])
    rank = np.empty(n_items, dtype=np.int64)
    rank[order] = np.arange(n_items)
    rng = np.random.default_rng(seed)
    per_chunk = max(1, min(n_resamples, _CHUNK_ENTRIES // n_items))
    for start in range(0, n_resamples, per_chunk):
        stop = min(start + per_chunk, n_resamples)
        # The draws of resampled_column_sums, relabelled to sorted positions before counting.
        draws = rank[rng.integers(0, n_items, size=(stop - start, n_items))]
        draws += (np.arange(stop - start) * n_items)[:, None]
        counts = np.bincount(draws.ravel(), minlength=draws.size)
        del draws
        weights = counts.reshape(stop - start, n_items).astype(np.float64)
        del counts
        sums[start:stop, :n_plain] = weights @ sorted_plain
        if sorted_extra_t is not None:
            sums[start:stop, n_plain:] = np.asarray(sorted_extra_t @ weights.T).T
        for g in present:
            low, high = bounds[g], bounds[g + 1]
            group_sums[start:stop, g] = weights[:, low:high] @ sorted_grouped[low:high]
    return sums, group_sums


def stack_statistic_columns(statistics: Mapping[str, ItemStatistic]) -> tuple[FloatArray, dict[str, int]]:
    """One dense (n_items, k) matrix of the statistics' columns (shared tables once) and each one's offset."""
    blocks: list[FloatArray] = []
    offsets: dict[tuple[object, ...], int] = {}
    starts: dict[str, int] = {}
    width = 0
    for name, stat in statistics.items():
        key = _memory_key(stat.columns)
        if key not in offsets:
            offsets[key] = width
            blocks.append(np.asarray(stat.columns, dtype=np.float64))
            width += stat.columns.shape[1]
        starts[name] = offsets[key]
    n_items = {stat.n_items for stat in statistics.values()}
    if len(n_items) > 1:
        raise ValueError(f"all statistics must share the same items; got n_items {sorted(n_items)}")
    rows = n_items.pop() if n_items else 0
    return (np.hstack(blocks) if blocks else np.zeros((rows, 0))), starts


def intervals_from_sums(
    statistics: Mapping[str, ItemStatistic],
    sums: FloatArray,
    starts: Mapping[str, int],
    *,
    level: float = DEFAULT_LEVEL,
) -> dict[str, Interval]:
    """Intervals of statistics stacked by ``stack_statistic_columns``, from its resampled sums (B, k)."""
    intervals: dict[str, Interval] = {}
    for name, stat in statistics.items():
        start = starts[name]
        samples = stat.from_sums(sums[:, start : start + stat.columns.shape[1]])
        low, high = percentile_interval(samples, level=level)
        intervals[name] = Interval(stat.estimate(), float(low), float(high))
    return intervals


def percentile_interval(
    samples: FloatArray, *, level: float = DEFAULT_LEVEL
) -> tuple[FloatArray, FloatArray]:
    """Lower and upper percentile bounds along axis 0, ignoring resamples where the value is undefined."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    tail = (1 - level) / 2
    with warnings.catch_warnings():
        # A statistic undefined in every resample (e.g. no non-tie pairs at all) gives NaN bounds.
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(samples, [tail, 1 - tail], axis=0)
    return low, high


def bootstrap_interval(
    statistic: ItemStatistic,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> Interval:
    """Estimate and percentile interval of one statistic, resampling items with replacement."""
    return bootstrap_intervals({"value": statistic}, n_resamples=n_resamples, seed=seed, level=level)["value"]


def bootstrap_intervals(
    statistics: Mapping[str, ItemStatistic],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> dict[str, Interval]:
    """Intervals for several statistics over the same items, all sharing one set of item resamples."""
    if not statistics:
        return {}
    n_items = {stat.n_items for stat in statistics.values()}
    if len(n_items) != 1:
        raise ValueError(f"all statistics must share the same items; got n_items {sorted(n_items)}")
    # Statistics often share a per-item table (kappa plain and linear, alpha nominal and ordinal); each
    # distinct table enters the weights @ columns product once.
    blocks: list[Columns] = []
    offsets: dict[tuple[object, ...], int] = {}
    starts: list[int] = []
    width = 0
    for stat in statistics.values():
        key = _memory_key(stat.columns)
        if key not in offsets:
            offsets[key] = width
            blocks.append(stat.columns)
            width += stat.columns.shape[1]
        starts.append(offsets[key])
    if any(sparse.issparse(block) for block in blocks):
        stacked: Columns = sparse.hstack(blocks, format="csr", dtype=np.float64)
    else:
        stacked = np.hstack([np.asarray(block, dtype=np.float64) for block in blocks])
    sums = resampled_column_sums(stacked, n_resamples=n_resamples, seed=seed)

    intervals: dict[str, Interval] = {}
    for (name, stat), start in zip(statistics.items(), starts, strict=True):
        samples = stat.from_sums(sums[:, start : start + stat.columns.shape[1]])
        low, high = percentile_interval(samples, level=level)
        intervals[name] = Interval(stat.estimate(), float(low), float(high))
    return intervals


def _memory_key(columns: Columns) -> tuple[object, ...]:
    # Two ndarray views with the same data pointer, shape, strides and dtype hold the same values.
    if sparse.issparse(columns):
        return ("sparse", id(columns))
    array = np.asarray(columns)
    return (array.__array_interface__["data"][0], array.shape, array.strides, array.dtype.str)
