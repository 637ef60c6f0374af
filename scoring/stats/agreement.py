"""How often two votes match: MT-Bench agreement between judge groups, judge vs majority, swap consistency.

Agreement follows the MT-Bench / Chatbot Arena paper (arXiv 2306.05685): the probability that a random
judge of one group and a random, different judge of the other group agree on a random item. On each item
we count the unordered pairs of distinct judges {j1, j2} with one of them in G1 and the other in G2, and
how many of those pairs voted the same; the headline rate pools the pairs over items
(sum agreeing / sum pairs). "Without ties" drops tie votes first, so only pairs where both votes are
non-tie count. Within one group (G1 = G2) this is every unordered pair of distinct judges on the item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .bootstrap import ItemStatistic
from .votes import (
    A_PREFERRED,
    B_PREFERRED,
    TIE,
    FloatArray,
    IntArray,
    as_mask,
    check_choices,
    check_majority,
    check_votes,
    ratio,
    vote_counts,
)


@dataclass(frozen=True)
class PairCounts:
    """Per-item numbers of compared vote pairs and of agreeing pairs, with and without ties."""

    agreeing: IntArray
    pairs: IntArray
    agreeing_no_ties: IntArray
    pairs_no_ties: IntArray

    @property
    def n_items(self) -> int:
        """Number of items the counts are indexed by."""
        return int(self.pairs.size)


@dataclass(frozen=True)
class AgreementRate:
    """Share of agreeing pairs, pooled over pairs (MT-Bench) and averaged per item, with counts."""

    rate: float
    item_mean: float
    n_items: int
    n_pairs: int
    n_agreeing: int


@dataclass(frozen=True)
class Agreement:
    """Agreement counting every vote, and counting only pairs of two non-tie votes."""

    with_ties: AgreementRate
    without_ties: AgreementRate


def _unordered_cross_pairs(in_1: IntArray, in_2: IntArray, in_both: IntArray) -> IntArray:
    # Unordered pairs of distinct judges with one judge in G1 and the other in G2. With a = only-G1,
    # b = only-G2 and i = both, that is ab + ai + bi + i(i-1)/2 = n1*n2 - i(i+1)/2.
    return in_1 * in_2 - in_both * (in_both + 1) // 2


def group_pair_counts(
    item: ArrayLike,
    choice: ArrayLike,
    *,
    n_items: int,
    group1: ArrayLike,
    group2: ArrayLike | None = None,
) -> PairCounts:
    """Per-item pair counts between judges in row masks ``group1`` and ``group2`` (None: within group1)."""
    item_array, choice_array = check_votes(item, choice, n_items=n_items)
    mask_1 = as_mask(group1, size=item_array.size, name="group1")
    counts_1 = vote_counts(item_array[mask_1], choice_array[mask_1], n_items=n_items)
    if group2 is None:
        counts_2 = counts_both = counts_1
    else:
        mask_2 = as_mask(group2, size=item_array.size, name="group2")
        both = mask_1 & mask_2
        counts_2 = vote_counts(item_array[mask_2], choice_array[mask_2], n_items=n_items)
        counts_both = vote_counts(item_array[both], choice_array[both], n_items=n_items)

    agreeing_by_choice = _unordered_cross_pairs(counts_1, counts_2, counts_both)
    non_tie = [A_PREFERRED, B_PREFERRED]
    return PairCounts(
        agreeing=agreeing_by_choice.sum(axis=1),
        pairs=_unordered_cross_pairs(counts_1.sum(axis=1), counts_2.sum(axis=1), counts_both.sum(axis=1)),
        agreeing_no_ties=agreeing_by_choice[:, non_tie].sum(axis=1),
        pairs_no_ties=_unordered_cross_pairs(
            counts_1[:, non_tie].sum(axis=1),
            counts_2[:, non_tie].sum(axis=1),
            counts_both[:, non_tie].sum(axis=1),
        ),
    )


def majority_pair_counts(item: ArrayLike, choice: ArrayLike, *, majority: ArrayLike) -> PairCounts:
    """Per-item counts of (judge vote, item majority) pairs and matches; items without a majority skipped."""
    majority_array = check_majority(majority)
    n_items = majority_array.size
    item_array, choice_array = check_votes(item, choice, n_items=n_items)
    row_majority = majority_array[item_array]
    compared = row_majority >= 0
    matches = compared & (choice_array == row_majority)
    compared_no_ties = compared & (choice_array != TIE) & (row_majority != TIE)
    return PairCounts(
        agreeing=_count_per_item(item_array, matches, n_items),
        pairs=_count_per_item(item_array, compared, n_items),
        agreeing_no_ties=_count_per_item(item_array, matches & compared_no_ties, n_items),
        pairs_no_ties=_count_per_item(item_array, compared_no_ties, n_items),
    )


def swap_pair_counts(item: ArrayLike, first: ArrayLike, second: ArrayLike, *, n_items: int) -> PairCounts:
    """Per-item counts of (trial 1, trial 2) vote pairs of an AI judge and of consistent ones."""
    item_array, first_array = check_votes(item, first, n_items=n_items)
    second_array = check_choices(second, name="second")
    if second_array.shape != first_array.shape:
        raise ValueError(f"first and second differ in length: {first_array.size} != {second_array.size}")
    matches = first_array == second_array
    both_decided = (first_array != TIE) & (second_array != TIE)
    everything = np.ones(item_array.size, dtype=bool)
    return PairCounts(
        agreeing=_count_per_item(item_array, matches, n_items),
        pairs=_count_per_item(item_array, everything, n_items),
        agreeing_no_ties=_count_per_item(item_array, matches & both_decided, n_items),
        pairs_no_ties=_count_per_item(item_array, both_decided, n_items),
    )


def agreement_from_counts(counts: PairCounts) -> Agreement:
    """Summarise per-item pair counts into agreement rates with and without ties."""
    return Agreement(
        with_ties=_rate(counts.agreeing, counts.pairs),
        without_ties=_rate(counts.agreeing_no_ties, counts.pairs_no_ties),
    )


def group_agreement(
    item: ArrayLike,
    choice: ArrayLike,
    *,
    n_items: int,
    group1: ArrayLike,
    group2: ArrayLike | None = None,
) -> Agreement:
    """MT-Bench agreement between judges in row masks ``group1`` and ``group2`` (None: within group1)."""
    counts = group_pair_counts(item, choice, n_items=n_items, group1=group1, group2=group2)
    return agreement_from_counts(counts)


def majority_agreement(item: ArrayLike, choice: ArrayLike, *, majority: ArrayLike) -> Agreement:
    """How often the given votes (e.g. one AI judge's) match the per-item majority of another group."""
    return agreement_from_counts(majority_pair_counts(item, choice, majority=majority))


def swap_consistency(item: ArrayLike, first: ArrayLike, second: ArrayLike, *, n_items: int) -> Agreement:
    """Share of (item, aspect) where an AI judge gave the same canonical choice in both presentation orders."""
    return agreement_from_counts(swap_pair_counts(item, first, second, n_items=n_items))


def agreement_statistic(counts: PairCounts, *, ties: bool = True, item_mean: bool = False) -> ItemStatistic:
    """Bootstrap-ready agreement: pooled over pairs (default) or averaged per item, with or without ties."""
    agreeing = counts.agreeing if ties else counts.agreeing_no_ties
    pairs = counts.pairs if ties else counts.pairs_no_ties
    if item_mean:
        # Averaging per-item rates is still a ratio of sums: sum(rate_i) / sum(has_pairs_i).
        has_pairs = pairs > 0
        per_item = np.where(has_pairs, ratio(agreeing, pairs), 0.0)
        columns = np.column_stack([per_item, has_pairs.astype(np.float64)])
    else:
        columns = np.column_stack([agreeing, pairs]).astype(np.float64)
    return ItemStatistic(columns=columns, from_sums=_first_over_second)


def _count_per_item(item: IntArray, selected: np.ndarray, n_items: int) -> IntArray:
    return np.bincount(item[selected], minlength=n_items).astype(np.int64, copy=False)


def _rate(agreeing: IntArray, pairs: IntArray) -> AgreementRate:
    has_pairs = pairs > 0
    n_pairs = int(pairs.sum())
    n_agreeing = int(agreeing.sum())
    per_item = ratio(agreeing[has_pairs], pairs[has_pairs])
    return AgreementRate(
        rate=float(ratio(n_agreeing, n_pairs)),
        item_mean=float(per_item.mean()) if per_item.size else float("nan"),
        n_items=int(has_pairs.sum()),
        n_pairs=n_pairs,
        n_agreeing=n_agreeing,
    )


def _first_over_second(sums: FloatArray) -> FloatArray:
    return ratio(sums[..., 0], sums[..., 1])
