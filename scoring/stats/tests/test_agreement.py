import dataclasses

import numpy as np
import pytest

from scoring.stats import (
    group_agreement,
    group_pair_counts,
    majority_agreement,
    majority_vote,
    swap_consistency,
    vote_counts,
)
from scoring.stats.tests.synthetic import brute_force_pairs, plurality, random_votes

A, TIE, B = 0, 1, 2


def test_human_human_agreement_hand_worked():
    # Item 0: three humans vote A, A, B -> 3 pairs, 1 agreeing (the two A's).
    # Item 1: two humans vote A, A     -> 1 pair,  1 agreeing.
    item = np.array([0, 0, 0, 1, 1])
    choice = np.array([A, A, B, A, A])
    human = np.ones(5, dtype=bool)

    result = group_agreement(item, choice, n_items=2, group1=human)

    assert result.with_ties.n_pairs == 4
    assert result.with_ties.n_agreeing == 2
    assert result.with_ties.n_items == 2
    assert result.with_ties.rate == pytest.approx(2 / 4)  # pooled over pairs, as in MT-Bench
    assert result.with_ties.item_mean == pytest.approx((1 / 3 + 1 / 1) / 2)


def test_ties_are_dropped_vote_by_vote_without_ties():
    # Item 0: A, tie, tie -> with ties 3 pairs, 1 agreeing (tie-tie); without ties no pair is left.
    # Item 1: B, B, tie   -> with ties 3 pairs, 1 agreeing (B-B); without ties 1 pair (B-B), agreeing.
    item = np.array([0, 0, 0, 1, 1, 1])
    choice = np.array([A, TIE, TIE, B, B, TIE])
    human = np.ones(6, dtype=bool)

    result = group_agreement(item, choice, n_items=2, group1=human)

    assert (result.with_ties.n_agreeing, result.with_ties.n_pairs) == (2, 6)
    assert result.with_ties.rate == pytest.approx(1 / 3)
    assert (result.without_ties.n_agreeing, result.without_ties.n_pairs) == (1, 1)
    assert result.without_ties.n_items == 1
    assert result.without_ties.rate == pytest.approx(1.0)


def test_ai_human_agreement_hand_worked():
    # Item 0: AI says A; humans A, A, B -> 3 AI-human pairs, 2 agree.
    # Item 1: AI says B; humans A, tie  -> 2 pairs, 0 agree; without ties 1 pair (B vs A), 0 agree.
    item = np.array([0, 0, 0, 0, 1, 1, 1])
    choice = np.array([A, A, A, B, B, A, TIE])
    ai = np.array([True, False, False, False, True, False, False])

    result = group_agreement(item, choice, n_items=2, group1=ai, group2=~ai)

    assert (result.with_ties.n_agreeing, result.with_ties.n_pairs) == (2, 5)
    assert result.with_ties.rate == pytest.approx(2 / 5)
    assert result.with_ties.item_mean == pytest.approx((2 / 3 + 0) / 2)
    assert (result.without_ties.n_agreeing, result.without_ties.n_pairs) == (2, 4)
    assert result.without_ties.rate == pytest.approx(0.5)


def test_group_pair_counts_match_brute_force_with_overlapping_groups():
    rng = np.random.default_rng(3)
    votes = random_votes(rng, n_items=30, n_judges=6)
    # Judges 0-3 in group 1, judges 2-5 in group 2: judges 2 and 3 are in both.
    group1 = votes.judge <= 3
    group2 = votes.judge >= 2
    for g1, g2 in [(group1, group2), (group1, group1), (group1, ~group1)]:
        counts = group_pair_counts(votes.item, votes.choice, n_items=votes.n_items, group1=g1, group2=g2)
        for ties in (True, False):
            expected = brute_force_pairs(votes.item, votes.choice, g1, g2, ties=ties)
            agreeing = counts.agreeing if ties else counts.agreeing_no_ties
            pairs = counts.pairs if ties else counts.pairs_no_ties
            assert (int(agreeing.sum()), int(pairs.sum())) == expected


def test_same_group_passed_twice_equals_within_group():
    rng = np.random.default_rng(4)
    votes = random_votes(rng, n_items=40, n_judges=5)
    everyone = np.ones(votes.item.size, dtype=bool)
    within = group_agreement(votes.item, votes.choice, n_items=votes.n_items, group1=everyone)
    twice = group_agreement(votes.item, votes.choice, n_items=votes.n_items, group1=everyone, group2=everyone)
    np.testing.assert_equal(dataclasses.astuple(within), dataclasses.astuple(twice))


def test_majority_rule():
    counts = np.array([[3, 0, 1], [2, 0, 2], [1, 1, 0], [0, 2, 1], [0, 0, 0], [0, 0, 1], [1, 1, 1]])
    # "tie": a shared top count is a tie majority (the behaviour before the rule was selectable).
    assert majority_vote(counts, rule="tie").tolist() == [A, TIE, TIE, TIE, -1, B, TIE]
    # "strict" (default): a shared top count leaves the item out; a single top tie (item 3) stays a tie.
    assert majority_vote(counts).tolist() == [A, -1, -1, TIE, -1, B, -1]
    assert majority_vote(counts, rule="strict").tolist() == majority_vote(counts).tolist()


@pytest.mark.parametrize("rule", ["strict", "tie"])
def test_majority_vote_matches_one_item_at_a_time(rule):
    rng = np.random.default_rng(5)
    votes = random_votes(rng, n_items=60, n_judges=4)
    majority = majority_vote(vote_counts(votes.item, votes.choice, n_items=votes.n_items), rule=rule)
    expected = [plurality(votes.choice[votes.item == i].tolist(), rule=rule) for i in range(votes.n_items)]
    assert majority.tolist() == expected


def test_majority_agreement_hand_worked():
    majority = np.array([A, TIE, B, -1])
    item = np.array([0, 1, 2, 3])
    ai = np.array([A, TIE, A, B])
    result = majority_agreement(item, ai, majority=majority)
    # Item 3 has no majority; of the other three the AI matches two.
    assert (result.with_ties.n_agreeing, result.with_ties.n_pairs) == (2, 3)
    # Without ties only item 0 (A vs A) and item 2 (A vs B) remain.
    assert (result.without_ties.n_agreeing, result.without_ties.n_pairs) == (1, 2)


def test_swap_consistency_hand_worked():
    item = np.arange(5)
    first = np.array([A, B, TIE, A, TIE])
    second = np.array([A, A, TIE, TIE, B])
    result = swap_consistency(item, first, second, n_items=5)
    assert (result.with_ties.n_agreeing, result.with_ties.n_pairs) == (2, 5)
    assert (result.without_ties.n_agreeing, result.without_ties.n_pairs) == (1, 2)


def test_no_pairs_gives_nan_not_an_error():
    result = group_agreement(np.array([0, 1]), np.array([A, B]), n_items=3, group1=np.ones(2, dtype=bool))
    assert result.with_ties.n_pairs == 0
    assert np.isnan(result.with_ties.rate)
    assert np.isnan(result.with_ties.item_mean)


@pytest.mark.parametrize(
    ("item", "choice", "error"),
    [
        (np.array([0, 1]), np.array([0, 3]), ValueError),
        (np.array([0, 5]), np.array([0, 1]), ValueError),
        (np.array([0, 1]), np.array([0.0, 1.0]), TypeError),
        (np.array([0, 1, 1]), np.array([0, 1]), ValueError),
    ],
)
def test_bad_input_is_refused(item, choice, error):
    with pytest.raises(error):
        group_agreement(item, choice, n_items=2, group1=np.ones(item.size, dtype=bool))


def test_group_mask_must_be_boolean():
    with pytest.raises(TypeError):
        group_agreement(np.array([0, 0]), np.array([0, 0]), n_items=1, group1=np.array([1, 1]))
