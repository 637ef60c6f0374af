"""Chance-corrected agreement: confusion table and Cohen's kappa against a majority, Fleiss' kappa.

Both kappas are functions of per-item sums (the joint 3x3 table; per-item vote counts and agreement
terms), so each also comes as an ``ItemStatistic`` for the item bootstrap.
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .bootstrap import ItemStatistic
from .votes import N_CHOICES, FloatArray, IntArray, check_majority, check_votes, ratio, vote_counts

KappaWeights = Literal["linear"] | None

_CATEGORY = np.arange(N_CHOICES)
# Disagreement weights, as in sklearn.metrics.cohen_kappa_score: 0 on the diagonal, 1 (nominal) or the
# ordinal distance |i - j| (linear; A < tie < B) off it.
_KAPPA_WEIGHTS = {
    None: (_CATEGORY[:, None] != _CATEGORY[None, :]).astype(np.float64),
    "linear": np.abs(_CATEGORY[:, None] - _CATEGORY[None, :]).astype(np.float64),
}


def item_confusion(item: ArrayLike, choice: ArrayLike, *, majority: ArrayLike) -> IntArray:
    """Per-item 3x3 counts, shape (n_items, 3, 3): rows the judge's choice, columns the item majority."""
    majority_array = check_majority(majority)
    n_items = majority_array.size
    item_array, choice_array = check_votes(item, choice, n_items=n_items)
    row_majority = majority_array[item_array]
    compared = row_majority >= 0
    cell = (item_array * N_CHOICES + choice_array) * N_CHOICES + row_majority
    flat = np.bincount(cell[compared], minlength=n_items * N_CHOICES * N_CHOICES)
    return flat.reshape(n_items, N_CHOICES, N_CHOICES).astype(np.int64, copy=False)


def confusion_matrix(item: ArrayLike, choice: ArrayLike, *, majority: ArrayLike) -> IntArray:
    """3x3 counts of the judge's choice (rows: A, tie, B) against the item majority (columns)."""
    return item_confusion(item, choice, majority=majority).sum(axis=0)


def kappa_from_table(table: ArrayLike, *, weights: KappaWeights = None) -> FloatArray:
    """Cohen's kappa of (..., 3, 3) joint tables, vectorised over leading axes; NaN where undefined."""
    counts = np.asarray(table, dtype=np.float64)
    disagreement = _KAPPA_WEIGHTS[weights]
    total = counts.sum(axis=(-2, -1))
    expected = counts.sum(axis=-1)[..., :, None] * counts.sum(axis=-2)[..., None, :]
    observed_disagreement = (disagreement * counts).sum(axis=(-2, -1))
    expected_disagreement = ratio((disagreement * expected).sum(axis=(-2, -1)), total)
    return 1.0 - ratio(observed_disagreement, expected_disagreement)


def cohen_kappa(
    item: ArrayLike, choice: ArrayLike, *, majority: ArrayLike, weights: KappaWeights = None
) -> float:
    """Cohen's kappa between the given votes (e.g. one AI judge's) and the per-item majority."""
    table = confusion_matrix(item, choice, majority=majority)
    return float(kappa_from_table(table, weights=weights))


def kappa_statistic(confusion: IntArray, *, weights: KappaWeights = None) -> ItemStatistic:
    """Bootstrap-ready Cohen's kappa from per-item confusion counts (``item_confusion``)."""
    columns = np.asarray(confusion).reshape(-1, N_CHOICES * N_CHOICES)
    return ItemStatistic(columns=columns, from_sums=partial(_kappa_from_flat_sums, weights=weights))


def fleiss_kappa(item: ArrayLike, choice: ArrayLike, *, n_items: int) -> float:
    """Fleiss' kappa when every voted item has the same number of votes (ValueError otherwise)."""
    return fleiss_statistic(vote_counts(item, choice, n_items=n_items)).estimate()


def fleiss_statistic(counts: ArrayLike) -> ItemStatistic:
    """Bootstrap-ready Fleiss' kappa from per-item vote counts; items without votes are left out."""
    counts_array = np.asarray(counts, dtype=np.int64)
    totals = counts_array.sum(axis=1)
    voted = totals > 0
    if not voted.any():
        raise ValueError("Fleiss' kappa needs at least one item with votes")
    lowest, highest = int(totals[voted].min()), int(totals[voted].max())
    if lowest != highest:
        raise ValueError(
            "Fleiss' kappa needs the same number of votes on every item, but items have between "
            f"{lowest} and {highest}; use Krippendorff's alpha for incomplete designs"
        )
    if lowest < 2:
        raise ValueError("Fleiss' kappa needs at least 2 votes per item")
    per_item = lowest
    # Observed agreement of an item: share of ordered pairs of its votes that match.
    item_agreement = ((counts_array**2).sum(axis=1) - per_item) / (per_item * (per_item - 1))
    columns = np.column_stack([voted, np.where(voted, item_agreement, 0.0), counts_array]).astype(np.float64)
    return ItemStatistic(columns=columns, from_sums=_fleiss_from_sums)


def _kappa_from_flat_sums(sums: FloatArray, *, weights: KappaWeights) -> FloatArray:
    return kappa_from_table(sums.reshape(*sums.shape[:-1], N_CHOICES, N_CHOICES), weights=weights)


def _fleiss_from_sums(sums: FloatArray) -> FloatArray:
    n_voted, agreement_sum, category_sums = sums[..., 0], sums[..., 1], sums[..., 2:]
    mean_agreement = ratio(agreement_sum, n_voted)
    shares = ratio(category_sums, category_sums.sum(axis=-1, keepdims=True))
    chance_agreement = (shares**2).sum(axis=-1)
    return ratio(mean_agreement - chance_agreement, 1.0 - chance_agreement)
