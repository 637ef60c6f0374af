"""Choice coding, input checks, per-item vote counts and the majority rule shared by every statistic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

A_PREFERRED = 0
TIE = 1
B_PREFERRED = 2
N_CHOICES = 3
# Majority of an item nobody voted on (or, under the strict rule, without a single most-voted choice);
# also "no gold answer" in gold arrays.
UNDEFINED = -1

# How an item whose top vote count is shared (2 A vs 2 B, 1 A vs 1 tie, 1-1-1) is read: "strict" leaves
# it out (majority -1), "tie" reads it as a tie majority (the rule used before the choice was offered).
MajorityRule = Literal["strict", "tie"]
MAJORITY_RULES: tuple[MajorityRule, ...] = get_args(MajorityRule)
DEFAULT_MAJORITY_RULE: MajorityRule = "strict"


def as_index_array(values: ArrayLike, *, name: str) -> IntArray:
    """Return a 1-D int64 copy-free view of ``values``, refusing floats and other kinds."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    # An empty list arrives as float64; it holds no values, so it is a valid empty index array.
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def as_mask(values: ArrayLike, *, size: int, name: str) -> BoolArray:
    """Return ``values`` as a boolean row mask of length ``size``."""
    mask = np.asarray(values)
    if mask.dtype != np.bool_:
        raise TypeError(f"{name} must be a boolean mask, got dtype {mask.dtype}")
    if mask.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {mask.shape}")
    return mask


def check_choices(choice: ArrayLike, *, name: str = "choice") -> IntArray:
    """Return ``choice`` as int64 after checking every value is 0 (A), 1 (tie) or 2 (B)."""
    array = as_index_array(choice, name=name)
    if array.size and (array.min() < 0 or array.max() >= N_CHOICES):
        raise ValueError(f"{name} values must be 0 (A), 1 (tie) or 2 (B); got {array.min()}..{array.max()}")
    return array


def check_votes(item: ArrayLike, choice: ArrayLike, *, n_items: int) -> tuple[IntArray, IntArray]:
    """Return ``item`` and ``choice`` as int64 arrays after checking lengths and value ranges."""
    item_array = as_index_array(item, name="item")
    choice_array = check_choices(choice)
    if item_array.shape != choice_array.shape:
        raise ValueError(f"item and choice differ in length: {item_array.size} != {choice_array.size}")
    if n_items < 0:
        raise ValueError(f"n_items must be >= 0, got {n_items}")
    if item_array.size and (item_array.min() < 0 or item_array.max() >= n_items):
        raise ValueError(
            f"item indices must lie in [0, {n_items}); got {item_array.min()}..{item_array.max()}"
        )
    return item_array, choice_array


def check_majority(majority: ArrayLike) -> IntArray:
    """Return a per-item majority array as int64, allowing -1 for items without a majority."""
    array = as_index_array(majority, name="majority")
    if array.size and (array.min() < UNDEFINED or array.max() >= N_CHOICES):
        raise ValueError(f"majority values must be -1, 0, 1 or 2; got {array.min()}..{array.max()}")
    return array


def vote_counts(item: ArrayLike, choice: ArrayLike, *, n_items: int) -> IntArray:
    """Count votes per item and choice: an (n_items, 3) array of A, tie and B votes."""
    item_array, choice_array = check_votes(item, choice, n_items=n_items)
    flat = np.bincount(item_array * N_CHOICES + choice_array, minlength=n_items * N_CHOICES)
    return flat.reshape(n_items, N_CHOICES).astype(np.int64, copy=False)


@dataclass(frozen=True)
class Majority:
    """Per-item majority under a stated rule, with how many voted items it had to leave out."""

    choice: IntArray  # per item 0 (A), 1 (tie), 2 (B), or -1 (no votes; strict: no single top choice)
    rule: MajorityRule
    n_voted: int  # items with at least one vote
    n_split: int  # voted items whose top count is shared by two or three choices

    @property
    def n_left_out(self) -> int:
        """Voted items without a majority: the split items under "strict", none under "tie"."""
        return self.n_split if self.rule == "strict" else 0

    @property
    def n_decided(self) -> int:
        """Items with a majority (A, tie or B)."""
        return self.n_voted - self.n_left_out


def check_rule(rule: str) -> MajorityRule:
    """Return ``rule`` if it is a known majority rule ("strict" or "tie"), else raise ValueError."""
    if rule not in MAJORITY_RULES:
        raise ValueError(f"majority rule must be one of {', '.join(MAJORITY_RULES)}; got {rule!r}")
    return rule  # type: ignore[return-value]


def _check_counts(counts: ArrayLike) -> IntArray:
    counts_array = np.asarray(counts)
    if counts_array.ndim != 2 or counts_array.shape[1] != N_CHOICES:
        raise ValueError(f"counts must have shape (n_items, 3), got {counts_array.shape}")
    return counts_array.astype(np.int64, copy=False)


def split_items(counts: ArrayLike) -> BoolArray:
    """Items with votes whose top count is shared by two or three choices (no single most-voted choice)."""
    counts_array = _check_counts(counts)
    top = counts_array.max(axis=1)
    return ((counts_array == top[:, None]).sum(axis=1) > 1) & (top > 0)


def majority_vote(counts: ArrayLike, *, rule: MajorityRule = DEFAULT_MAJORITY_RULE) -> IntArray:
    """Plurality choice per item from (n_items, 3) counts; a shared top count is -1 (strict) or a tie."""
    rule = check_rule(rule)
    counts_array = _check_counts(counts)
    majority = counts_array.argmax(axis=1).astype(np.int64)
    # A split vote has no single winner: strict leaves the item out, "tie" reads it as "no clear winner".
    majority[split_items(counts_array)] = UNDEFINED if rule == "strict" else TIE
    majority[counts_array.max(axis=1) == 0] = UNDEFINED
    return majority


def item_majority(counts: ArrayLike, *, rule: MajorityRule = DEFAULT_MAJORITY_RULE) -> Majority:
    """``majority_vote`` with the rule and the numbers of voted and split items, for reporting."""
    counts_array = _check_counts(counts)
    return Majority(
        choice=majority_vote(counts_array, rule=rule),
        rule=check_rule(rule),
        n_voted=int((counts_array.sum(axis=1) > 0).sum()),
        n_split=int(split_items(counts_array).sum()),
    )


def ratio(numerator: ArrayLike, denominator: ArrayLike) -> FloatArray:
    """Elementwise numerator / denominator as float, NaN where the denominator is 0."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    num, den = np.broadcast_arrays(num, den)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out
