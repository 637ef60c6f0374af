"""The headline agreement figures of one aspect, built once and ready for a shared item bootstrap."""

from __future__ import annotations

from numpy.typing import ArrayLike

from .agreement import agreement_statistic, group_pair_counts, majority_pair_counts
from .bootstrap import ItemStatistic
from .kappa import item_confusion, kappa_statistic
from .reliability import alpha_statistic, item_coincidences
from .votes import DEFAULT_MAJORITY_RULE, MajorityRule, as_mask, check_votes, majority_vote, vote_counts


def headline_statistics(
    item: ArrayLike,
    choice: ArrayLike,
    *,
    n_items: int,
    human: ArrayLike,
    ai: ArrayLike,
    rule: MajorityRule = DEFAULT_MAJORITY_RULE,
) -> dict[str, ItemStatistic]:
    """Agreement (pooled and item-weighted, with/without ties), kappa vs human majority, human alpha."""
    item_array, choice_array = check_votes(item, choice, n_items=n_items)
    human_mask = as_mask(human, size=item_array.size, name="human")
    ai_mask = as_mask(ai, size=item_array.size, name="ai")
    human_counts = vote_counts(item_array[human_mask], choice_array[human_mask], n_items=n_items)
    majority = majority_vote(human_counts, rule=rule)

    human_pairs = group_pair_counts(item_array, choice_array, n_items=n_items, group1=human_mask)
    ai_pairs = group_pair_counts(item_array, choice_array, n_items=n_items, group1=ai_mask, group2=human_mask)
    ai_majority = majority_pair_counts(item_array[ai_mask], choice_array[ai_mask], majority=majority)
    coincidences = item_coincidences(human_counts)
    confusion = item_confusion(item_array[ai_mask], choice_array[ai_mask], majority=majority)
    figures = {
        "human_human_agreement": agreement_statistic(human_pairs, ties=True),
        "human_human_agreement_no_ties": agreement_statistic(human_pairs, ties=False),
        "ai_human_agreement": agreement_statistic(ai_pairs, ties=True),
        "ai_human_agreement_no_ties": agreement_statistic(ai_pairs, ties=False),
        "ai_majority_agreement": agreement_statistic(ai_majority, ties=True),
        "ai_majority_agreement_no_ties": agreement_statistic(ai_majority, ties=False),
        "ai_majority_kappa": kappa_statistic(confusion),
        "ai_majority_kappa_linear": kappa_statistic(confusion, weights="linear"),
        "human_alpha_nominal": alpha_statistic(coincidences, level="nominal"),
        "human_alpha_ordinal": alpha_statistic(coincidences, level="ordinal"),
    }
    # The item-weighted versions: every item counts once, however many votes it has.
    for name, counts in (
        ("human_human_agreement", human_pairs),
        ("ai_human_agreement", ai_pairs),
        ("ai_majority_agreement", ai_majority),
    ):
        figures[f"{name}_item_mean"] = agreement_statistic(counts, ties=True, item_mean=True)
        figures[f"{name}_no_ties_item_mean"] = agreement_statistic(counts, ties=False, item_mean=True)
    return figures


def point_estimates(statistics: dict[str, ItemStatistic]) -> dict[str, float]:
    """Each statistic on the observed data, without resampling."""
    return {name: stat.estimate() for name, stat in statistics.items()}
