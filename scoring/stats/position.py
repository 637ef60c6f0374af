"""Position bias: how often a judge's non-tie choice went to the image shown first (left).

Each judgment records its presented order as ``a_first`` (True: image A was shown first/left, stored as
"AB"; False: B first, "BA"). A choice of A under "AB", or of B under "BA", went to the first-shown image.

The headline share weights the two presentation orders equally:

    share_first = (first_AB / decided_AB + first_BA / decided_BA) / 2

where ``decided_*`` counts the non-tie choices made under that order and ``first_*`` those that went to
the first-shown image. Why not the plain pooled share (first_AB + first_BA) / (decided_AB + decided_BA)?
A judge with no position bias but a real preference (say image A is usually the better one) picks the
first image more often whenever "AB" is shown more often than "BA", so the pooled share mixes position
with content. With the orders weighted equally, a judge without position bias scores 1/2 in expectation
whatever the content and whatever the mix of orders, as long as the order was assigned independently of
the images. The pooled share is kept as a second figure (they agree when the orders are balanced). When
every judgment used one order (legacy AI judgments, all "AB"), position and content cannot be told apart:
the headline share is NaN and the result says there is not enough data.

Both shares are ratios of per-item sums, so they are ``ItemStatistic`` objects and bootstrap over items
with the resamples shared by every other figure. A judge asked in both orders on the same item (two
trials) contributes both judgments to that item's row; pooled humans contribute every human judgment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, Interval, ItemStatistic, bootstrap_intervals
from .votes import A_PREFERRED, B_PREFERRED, FloatArray, IntArray, as_mask, check_votes, ratio

# Non-tie judgments needed in EACH presentation order before a share is reported as measured and can be
# flagged: below this the percentile interval of a proportion is too coarse to trust.
MIN_DECIDED_PER_ORDER = 10
NO_BIAS = 0.5


@dataclass(frozen=True)
class PositionCounts:
    """Per-item counts of non-tie choices and of those for the first-shown image, by presented order."""

    first_a_first: IntArray  # "AB" shown: choices of A
    decided_a_first: IntArray  # "AB" shown: non-tie choices
    first_b_first: IntArray  # "BA" shown: choices of B
    decided_b_first: IntArray  # "BA" shown: non-tie choices
    ties: IntArray  # tie choices, either order (not part of the share)

    @property
    def n_items(self) -> int:
        """Number of items the counts are indexed by."""
        return int(self.ties.size)

    def columns(self) -> FloatArray:
        """The (n_items, 4) table both position statistics are functions of."""
        return np.column_stack(
            [self.first_a_first, self.decided_a_first, self.first_b_first, self.decided_b_first]
        ).astype(np.float64)


@dataclass(frozen=True)
class PositionBias:
    """A judge's (or group's) share of non-tie choices for the first-shown image, with its evidence."""

    share_first: Interval  # orders weighted equally (the headline)
    pooled_share_first: Interval  # all non-tie choices pooled
    flagged: bool  # enough data and the headline interval excludes 1/2
    enough_data: bool  # at least min_decided non-tie choices in each order
    n_items: int  # items with at least one non-tie choice
    n_decided_a_first: int
    n_decided_b_first: int
    n_first: int  # non-tie choices that went to the first-shown image, both orders
    n_ties: int
    min_decided: int


def position_counts(
    item: ArrayLike, choice: ArrayLike, *, a_first: ArrayLike, n_items: int
) -> PositionCounts:
    """Per-item position counts of the given judgments; ``a_first`` is True where A was shown first/left."""
    item_array, choice_array = check_votes(item, choice, n_items=n_items)
    order = as_mask(a_first, size=item_array.size, name="a_first")
    went_first = np.where(order, choice_array == A_PREFERRED, choice_array == B_PREFERRED)
    decided = choice_array != 1
    return PositionCounts(
        first_a_first=_per_item(item_array, went_first & order, n_items),
        decided_a_first=_per_item(item_array, decided & order, n_items),
        first_b_first=_per_item(item_array, went_first & ~order, n_items),
        decided_b_first=_per_item(item_array, decided & ~order, n_items),
        ties=_per_item(item_array, ~decided, n_items),
    )


def position_statistics(counts: PositionCounts) -> dict[str, ItemStatistic]:
    """Bootstrap-ready shares for the first-shown image: "share_first" (orders balanced) and "pooled"."""
    columns = counts.columns()
    return {
        "share_first": ItemStatistic(columns=columns, from_sums=_balanced_share),
        "pooled": ItemStatistic(columns=columns, from_sums=_pooled_share),
    }


def position_bias_from_intervals(
    counts: PositionCounts,
    *,
    share_first: Interval,
    pooled: Interval,
    min_decided: int = MIN_DECIDED_PER_ORDER,
) -> PositionBias:
    """Summarise counts and the two bootstrapped shares; flagged when the headline interval excludes 1/2."""
    if min_decided < 1:
        raise ValueError(f"min_decided must be >= 1, got {min_decided}")
    n_a_first = int(counts.decided_a_first.sum())
    n_b_first = int(counts.decided_b_first.sum())
    enough = min(n_a_first, n_b_first) >= min_decided and bool(
        np.isfinite([share_first.low, share_first.high]).all()
    )
    excludes_half = share_first.low > NO_BIAS or share_first.high < NO_BIAS
    return PositionBias(
        share_first=share_first,
        pooled_share_first=pooled,
        flagged=bool(enough and excludes_half),
        enough_data=enough,
        n_items=int(((counts.decided_a_first + counts.decided_b_first) > 0).sum()),
        n_decided_a_first=n_a_first,
        n_decided_b_first=n_b_first,
        n_first=int(counts.first_a_first.sum() + counts.first_b_first.sum()),
        n_ties=int(counts.ties.sum()),
        min_decided=min_decided,
    )


def position_bias(
    item: ArrayLike,
    choice: ArrayLike,
    *,
    a_first: ArrayLike,
    n_items: int,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    min_decided: int = MIN_DECIDED_PER_ORDER,
) -> PositionBias:
    """Position bias of the given judgments with its own item bootstrap (reports use the shared one)."""
    counts = position_counts(item, choice, a_first=a_first, n_items=n_items)
    intervals = bootstrap_intervals(
        position_statistics(counts), n_resamples=n_resamples, seed=seed, level=level
    )
    return position_bias_from_intervals(
        counts, share_first=intervals["share_first"], pooled=intervals["pooled"], min_decided=min_decided
    )


def _per_item(item: IntArray, selected: np.ndarray, n_items: int) -> IntArray:
    return np.bincount(item[selected], minlength=n_items).astype(np.int64, copy=False)


def _balanced_share(sums: FloatArray) -> FloatArray:
    # NaN (undefined) whenever one order has no non-tie choice in the (re)sample.
    return (ratio(sums[..., 0], sums[..., 1]) + ratio(sums[..., 2], sums[..., 3])) / 2


def _pooled_share(sums: FloatArray) -> FloatArray:
    return ratio(sums[..., 0] + sums[..., 2], sums[..., 1] + sums[..., 3])
