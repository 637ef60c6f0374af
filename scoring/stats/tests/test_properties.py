"""Property tests: perfect agreement, A<->B relabelling, intervals around the estimate."""

import dataclasses

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scoring.stats import (
    bootstrap_intervals,
    fleiss_kappa,
    group_agreement,
    headline_statistics,
    majority_vote,
    point_estimates,
    vote_counts,
)

choices = st.integers(0, 2)
# One entry per item: the AI's vote and the human votes (0 to 5 of them).
items = st.lists(st.tuples(choices, st.lists(choices, max_size=5)), min_size=1, max_size=30)


def _long_format(per_item):
    """Long-format arrays with the AI's vote first on each item, then the humans'."""
    item, choice, human = [], [], []
    for index, (ai_vote, human_votes) in enumerate(per_item):
        for vote, is_human in [(ai_vote, False)] + [(v, True) for v in human_votes]:
            item.append(index)
            choice.append(vote)
            human.append(is_human)
    return np.array(item), np.array(choice), np.array(human)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(choices, st.integers(2, 5)), min_size=1, max_size=30))
def test_perfect_agreement_gives_one(per_item):
    # Every judge, AI and human, votes the item's own choice.
    item, choice, human = _long_format([(c, [c] * n) for c, n in per_item])
    n_items = len(per_item)
    estimates = point_estimates(headline_statistics(item, choice, n_items=n_items, human=human, ai=~human))

    assert estimates["human_human_agreement"] == 1.0
    assert estimates["ai_human_agreement"] == 1.0
    assert estimates["ai_majority_agreement"] == 1.0
    if (choice != 1).any():
        assert estimates["ai_human_agreement_no_ties"] == 1.0
    else:
        assert np.isnan(estimates["ai_human_agreement_no_ties"])
    # Chance-corrected statistics are only defined when the items do not all share one answer.
    if len({c for c, _ in per_item}) > 1:
        for name in (
            "ai_majority_kappa",
            "ai_majority_kappa_linear",
            "human_alpha_nominal",
            "human_alpha_ordinal",
        ):
            assert np.isclose(estimates[name], 1.0), name
        if len({n for _, n in per_item}) == 1:  # Fleiss needs the same number of votes per item
            assert np.isclose(fleiss_kappa(item[human], choice[human], n_items=n_items), 1.0)


@settings(max_examples=100, deadline=None)
@given(items)
def test_relabelling_a_and_b_changes_nothing(per_item):
    item, choice, human = _long_format(per_item)
    n_items = len(per_item)
    before = point_estimates(headline_statistics(item, choice, n_items=n_items, human=human, ai=~human))
    after = point_estimates(headline_statistics(item, 2 - choice, n_items=n_items, human=human, ai=~human))
    for name, value in before.items():
        np.testing.assert_allclose(after[name], value, rtol=1e-12, atol=1e-12, err_msg=name)
    majority = majority_vote(vote_counts(item[human], choice[human], n_items=n_items))
    relabelled = majority_vote(vote_counts(item[human], 2 - choice[human], n_items=n_items))
    np.testing.assert_array_equal(relabelled, np.where(majority >= 0, 2 - majority, -1))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(choices, st.lists(choices, min_size=2, max_size=5)), min_size=20, max_size=60))
def test_bootstrap_intervals_contain_the_estimate(per_item):
    item, choice, human = _long_format(per_item)
    n_items = len(per_item)
    stats = headline_statistics(item, choice, n_items=n_items, human=human, ai=~human)
    for name, (estimate, low, high) in bootstrap_intervals(stats, n_resamples=400, seed=0).items():
        if np.isfinite(estimate):
            assert low - 1e-9 <= estimate <= high + 1e-9, (name, estimate, low, high)


@settings(max_examples=60, deadline=None)
@given(items)
def test_group_order_does_not_matter(per_item):
    item, choice, human = _long_format(per_item)
    n_items = len(per_item)
    forward = group_agreement(item, choice, n_items=n_items, group1=human, group2=~human)
    backward = group_agreement(item, choice, n_items=n_items, group1=~human, group2=human)
    assume(forward.with_ties.n_pairs > 0)
    # assert_equal treats NaN (no non-tie pairs) as equal to NaN.
    np.testing.assert_equal(dataclasses.astuple(forward), dataclasses.astuple(backward))
