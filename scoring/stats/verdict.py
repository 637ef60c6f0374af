"""Can a judge's labels stand in for people? Judge–human against human–human agreement, paired over items.

The figure
----------
For one aspect and one judge (an AI judge, a reward model: any row mask), on each item we take

* ``a_i``: the judge–human agreement on item i, the share of (judge vote, human vote) pairs that match;
* ``h_i``: the human–human agreement on item i, the share of pairs of distinct humans that match;

both in the MT-Bench sense used by ``agreement`` (with ties, or counting only pairs of two non-tie votes).
The compared items are those where both are defined: the judge voted and at least two humans voted (for
"without ties": the judge's vote is not a tie and at least two human votes are not ties). On those n items

    difference = mean_i(a_i) - mean_i(h_i)

Every item counts once in both means. The pooled rates of the report (sum of agreeing pairs / sum of
pairs) weight an item with m human votes by m in the judge–human figure but by m(m-1)/2 in the
human–human one, so when the number of votes per item goes with how easy the item is (gold pairs get
more votes and are easy), a judge that behaves exactly like one more human shows a pooled gap. With
equal item weights, a judge exchangeable with the humans has E[a_i] = E[h_i] on every item, so the
difference is 0 in expectation whatever the design.

The interval is a paired percentile bootstrap over items: the difference is one ``ItemStatistic`` whose
columns hold both per-item rates, so each resample moves both figures together (and shares its resamples
with every other figure bootstrapped alongside it).

The verdict
-----------
With ``[low, high]`` the interval of the difference, ``margin`` the largest shortfall still counted as
"within the range of a human annotator" (default 0.05 agreement) and ``min_items`` the fewest compared
items (default 30), the rules are applied in order:

1. "not enough data": fewer than ``min_items`` compared items, or the interval is undefined;
2. "below": ``high < 0`` — the judge agrees with people measurably less than people agree with each other;
3. "above": ``low > 0`` — it agrees with people measurably more than they agree with each other (it sits
   closer to their consensus than a typical annotator does);
4. "within": ``low >= -margin`` — the interval holds 0 and rules out a shortfall larger than the margin;
5. "not enough data": otherwise — the interval holds 0 but also shortfalls beyond the margin, so the data
   cannot tell "within" from "below". An interval that merely contains 0 is not evidence of parity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .agreement import PairCounts, group_pair_counts
from .bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, Interval, ItemStatistic, bootstrap_intervals
from .votes import FloatArray, as_mask, check_votes, ratio

VerdictName = Literal["within", "below", "above", "not enough data"]
VERDICT_LABELS: dict[VerdictName, str] = {
    "within": "within the range of a human annotator",
    "below": "below the range of a human annotator",
    "above": "above the range of a human annotator",
    "not enough data": "not enough data",
}
DEFAULT_MARGIN = 0.05
MIN_VERDICT_ITEMS = 30


@dataclass(frozen=True)
class HumanRangeComparison:
    """Bootstrap-ready paired figures ("difference", "judge_human", "human_human") and their counts."""

    statistics: dict[str, ItemStatistic]
    ties: bool
    n_items: int  # compared items: both per-item rates defined
    n_judge_pairs: int  # judge–human vote pairs on the compared items
    n_human_pairs: int  # human–human vote pairs on the compared items


@dataclass(frozen=True)
class Verdict:
    """The verdict for one judge and aspect, the intervals and counts behind it and the rule's settings."""

    verdict: VerdictName
    label: str
    reason: str
    difference: Interval
    judge_human: Interval
    human_human: Interval
    ties: bool
    n_items: int
    n_judge_pairs: int
    n_human_pairs: int
    margin: float
    min_items: int


def human_range_comparison(
    *, judge_pairs: PairCounts, human_pairs: PairCounts, ties: bool = True
) -> HumanRangeComparison:
    """Paired item-weighted judge–human vs human–human agreement from ``group_pair_counts`` results.

    ``judge_pairs`` is ``group_pair_counts(..., group1=judge, group2=human)``, ``human_pairs`` is
    ``group_pair_counts(..., group1=human)``, both over the same items.
    """
    if judge_pairs.n_items != human_pairs.n_items:
        raise ValueError(
            f"judge_pairs and human_pairs cover different items: {judge_pairs.n_items} != {human_pairs.n_items}"
        )
    judge_agreeing, judge_total = _pick(judge_pairs, ties)
    human_agreeing, human_total = _pick(human_pairs, ties)
    compared = (judge_total > 0) & (human_total > 0)
    columns = np.column_stack(
        [
            np.where(compared, ratio(judge_agreeing, judge_total), 0.0),
            np.where(compared, ratio(human_agreeing, human_total), 0.0),
            compared.astype(np.float64),
        ]
    )
    return HumanRangeComparison(
        statistics={
            "difference": ItemStatistic(columns=columns, from_sums=_difference),
            "judge_human": ItemStatistic(columns=columns, from_sums=_judge_mean),
            "human_human": ItemStatistic(columns=columns, from_sums=_human_mean),
        },
        ties=ties,
        n_items=int(compared.sum()),
        n_judge_pairs=int(judge_total[compared].sum()),
        n_human_pairs=int(human_total[compared].sum()),
    )


def verdict_rule(
    *, difference: Interval, n_items: int, margin: float = DEFAULT_MARGIN, min_items: int = MIN_VERDICT_ITEMS
) -> tuple[VerdictName, str]:
    """The verdict and a one-sentence reason from the difference's interval (rules in the module docstring)."""
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin}")
    if min_items < 1:
        raise ValueError(f"min_items must be >= 1, got {min_items}")
    low, high = difference.low, difference.high
    if n_items < min_items:
        return "not enough data", (
            f"{n_items} pairs have a vote from this judge and from at least two humans; {min_items} are needed"
        )
    if not (math.isfinite(low) and math.isfinite(high)):
        return "not enough data", "the difference could not be estimated on these pairs"
    span = f"the interval of the difference is [{low:+.3f}, {high:+.3f}]"
    if high < 0:
        return "below", f"{span}: entirely below 0"
    if low > 0:
        return "above", f"{span}: entirely above 0"
    if low >= -margin:
        return "within", f"{span}: it holds 0 and rules out a shortfall larger than {margin:.3f}"
    return "not enough data", (
        f"{span}: it holds 0 but also shortfalls larger than {margin:.3f}, so more pairs are needed"
    )


def verdict_from_intervals(
    comparison: HumanRangeComparison,
    *,
    difference: Interval,
    judge_human: Interval,
    human_human: Interval,
    margin: float = DEFAULT_MARGIN,
    min_items: int = MIN_VERDICT_ITEMS,
) -> Verdict:
    """Assemble the verdict from a comparison and the intervals of its three statistics (shared bootstrap)."""
    name, reason = verdict_rule(
        difference=difference, n_items=comparison.n_items, margin=margin, min_items=min_items
    )
    return Verdict(
        verdict=name,
        label=VERDICT_LABELS[name],
        reason=reason,
        difference=difference,
        judge_human=judge_human,
        human_human=human_human,
        ties=comparison.ties,
        n_items=comparison.n_items,
        n_judge_pairs=comparison.n_judge_pairs,
        n_human_pairs=comparison.n_human_pairs,
        margin=margin,
        min_items=min_items,
    )


def human_range_verdict(
    item: ArrayLike,
    choice: ArrayLike,
    *,
    n_items: int,
    judge: ArrayLike,
    human: ArrayLike,
    ties: bool = True,
    margin: float = DEFAULT_MARGIN,
    min_items: int = MIN_VERDICT_ITEMS,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> Verdict:
    """Verdict for the judge in row mask ``judge`` against the humans in ``human``, with its own bootstrap."""
    item_array, choice_array = check_votes(item, choice, n_items=n_items)
    judge_mask = as_mask(judge, size=item_array.size, name="judge")
    human_mask = as_mask(human, size=item_array.size, name="human")
    if (judge_mask & human_mask).any():
        raise ValueError("judge and human masks overlap: a judgment cannot be both the judge's and a human's")
    comparison = human_range_comparison(
        judge_pairs=group_pair_counts(
            item_array, choice_array, n_items=n_items, group1=judge_mask, group2=human_mask
        ),
        human_pairs=group_pair_counts(item_array, choice_array, n_items=n_items, group1=human_mask),
        ties=ties,
    )
    intervals = bootstrap_intervals(comparison.statistics, n_resamples=n_resamples, seed=seed, level=level)
    return verdict_from_intervals(
        comparison,
        difference=intervals["difference"],
        judge_human=intervals["judge_human"],
        human_human=intervals["human_human"],
        margin=margin,
        min_items=min_items,
    )


def _pick(counts: PairCounts, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    if ties:
        return counts.agreeing, counts.pairs
    return counts.agreeing_no_ties, counts.pairs_no_ties


def _difference(sums: FloatArray) -> FloatArray:
    return ratio(sums[..., 0] - sums[..., 1], sums[..., 2])


def _judge_mean(sums: FloatArray) -> FloatArray:
    return ratio(sums[..., 0], sums[..., 2])


def _human_mean(sums: FloatArray) -> FloatArray:
    return ratio(sums[..., 1], sums[..., 2])
