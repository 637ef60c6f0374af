"""Position bias: hand-worked counts, simulated judges of known bias, and a brute-force bootstrap."""

import numpy as np
import pytest

from scoring.stats import (
    Interval,
    bootstrap_intervals,
    position_bias,
    position_bias_from_intervals,
    position_counts,
    position_statistics,
)
from scoring.stats.tests.synthetic import SimulatedJudge, brute_force_bootstrap, simulate_study

A, TIE, B = 0, 1, 2


def _study(seed: int, **kwargs):
    rng = np.random.default_rng(seed)
    defaults = {
        "n_items": 400,
        "votes_per_item": 3,
        "n_humans": 10,
        "judges": [SimulatedJudge("first", first=1.0), SimulatedJudge("fair")],
    }
    return simulate_study(rng, **{**defaults, **kwargs})


def _of(study, rows, **kwargs):
    return position_bias(
        study.item[rows], study.choice[rows], a_first=study.a_first[rows], n_items=study.n_items, **kwargs
    )


def test_counts_hand_worked():
    # Item 0: AB shown, A chosen (first); BA shown, A chosen (second). Item 1: BA shown, B chosen (first);
    # AB shown, tie. Item 2: AB shown, B chosen (second).
    item = np.array([0, 0, 1, 1, 2])
    choice = np.array([A, A, B, TIE, B])
    a_first = np.array([True, False, False, True, True])
    counts = position_counts(item, choice, a_first=a_first, n_items=3)
    assert counts.first_a_first.tolist() == [1, 0, 0]
    assert counts.decided_a_first.tolist() == [1, 0, 1]
    assert counts.first_b_first.tolist() == [0, 1, 0]
    assert counts.decided_b_first.tolist() == [1, 1, 0]
    assert counts.ties.tolist() == [0, 1, 0]
    stats = position_statistics(counts)
    # AB: 1 of 2 non-tie choices went first; BA: 1 of 2. Balanced (1/2 + 1/2) / 2, pooled 2 / 4.
    assert stats["share_first"].estimate() == pytest.approx(0.5)
    assert stats["pooled"].estimate() == pytest.approx(0.5)


def test_judge_that_always_picks_the_first_image_is_flagged_near_one():
    study = _study(0)
    result = _of(study, study.rows_of("first"))
    assert result.share_first.estimate == pytest.approx(1.0)
    assert result.share_first.low > 0.99
    assert result.enough_data and result.flagged
    assert result.n_first == result.n_decided_a_first + result.n_decided_b_first


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fair_judge_and_pooled_humans_are_near_one_half_and_not_flagged(seed):
    study = _study(seed)
    for rows in (study.rows_of("fair"), study.human_rows):
        result = _of(study, rows)
        assert result.enough_data
        assert result.share_first.estimate == pytest.approx(0.5, abs=0.06)
        assert result.share_first.low < 0.5 < result.share_first.high
        assert not result.flagged


def test_balanced_share_separates_position_from_content_when_orders_are_unbalanced():
    # Image A is usually better and is shown first 80% of the time. A fair judge then picks the first
    # image far more than half the time (pooled) without any position bias; weighting the two orders
    # equally removes the content effect.
    study = _study(4, n_items=800, lean=(3.0, 0.3, 0.7), p_a_first=0.8)
    fair = _of(study, study.rows_of("fair"))
    assert fair.pooled_share_first.low > 0.6
    assert fair.share_first.estimate == pytest.approx(0.5, abs=0.05)
    assert not fair.flagged
    biased = _of(study, study.rows_of("first"))
    assert biased.flagged and biased.share_first.estimate == pytest.approx(1.0)


def test_one_presentation_order_only_is_not_enough_data():
    # Legacy AI judgments: every pair shown A first. Position and content cannot be told apart.
    study = _study(5, p_a_first=1.0)
    result = _of(study, study.rows_of("first"))
    assert np.isnan(result.share_first.estimate)
    assert result.pooled_share_first.estimate == pytest.approx(1.0)
    assert result.n_decided_b_first == 0
    assert not result.enough_data and not result.flagged


def test_too_few_judgments_in_an_order_is_not_enough_data():
    counts = position_counts(np.arange(6), np.full(6, A), a_first=np.array([True] * 5 + [False]), n_items=6)
    result = position_bias_from_intervals(
        counts, share_first=Interval(0.5, 0.4, 0.45), pooled=Interval(0.8, 0.7, 0.9), min_decided=2
    )
    assert result.n_decided_b_first == 1
    assert not result.enough_data and not result.flagged


def test_relabelling_a_and_b_and_mirroring_the_order_changes_nothing():
    study = _study(6)
    rows = study.human_rows
    before = position_counts(study.item[rows], study.choice[rows], a_first=study.a_first[rows], n_items=400)
    after = position_counts(
        study.item[rows], 2 - study.choice[rows], a_first=~study.a_first[rows], n_items=400
    )
    np.testing.assert_array_equal(after.first_a_first, before.first_b_first)
    np.testing.assert_array_equal(after.decided_a_first, before.decided_b_first)
    np.testing.assert_array_equal(after.first_b_first, before.first_a_first)


@pytest.mark.parametrize("who", ["fair", "humans"])
def test_interval_matches_brute_force_bootstrap(who):
    study = _study(7, n_items=40, judges=[SimulatedJudge("fair", first=0.3)])
    rows = study.human_rows if who == "humans" else study.rows_of("fair")
    item, choice, a_first = study.item[rows], study.choice[rows], study.a_first[rows]
    judgments = [list(zip(choice[item == i], a_first[item == i], strict=True)) for i in range(40)]

    def shares(drawn):
        # Recount from the raw judgments of the drawn items, one judgment at a time.
        tallies = {True: [0, 0], False: [0, 0]}  # order -> [went first, non-tie]
        for i in drawn:
            for c, order in judgments[i]:
                if c != TIE:
                    tallies[order][1] += 1
                    tallies[order][0] += int((c == A) == order)
        per_order = [t[0] / t[1] if t[1] else np.nan for t in tallies.values()]
        pooled = (tallies[True][0] + tallies[False][0]) / (tallies[True][1] + tallies[False][1])
        return np.mean(per_order), pooled

    ours = bootstrap_intervals(
        position_statistics(position_counts(item, choice, a_first=a_first, n_items=40)),
        n_resamples=300,
        seed=11,
    )
    expected_balanced = brute_force_bootstrap(40, lambda d: shares(d)[0], n_resamples=300, seed=11)
    expected_pooled = brute_force_bootstrap(40, lambda d: shares(d)[1], n_resamples=300, seed=11)
    assert (ours["share_first"].low, ours["share_first"].high) == pytest.approx(expected_balanced)
    assert (ours["pooled"].low, ours["pooled"].high) == pytest.approx(expected_pooled)
    assert ours["share_first"].estimate == pytest.approx(shares(range(40))[0])


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="a_first"):
        position_counts(np.array([0]), np.array([A]), a_first=np.array([1]), n_items=1)
    with pytest.raises(ValueError, match="a_first"):
        position_counts(np.array([0, 0]), np.array([A, B]), a_first=np.array([True]), n_items=1)
    with pytest.raises(ValueError, match="min_decided"):
        position_bias(np.array([0]), np.array([A]), a_first=np.array([True]), n_items=1, min_decided=0)
