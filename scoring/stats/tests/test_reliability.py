import krippendorff
import numpy as np
import pytest

from scoring.stats import annotator_reliability, krippendorff_alpha
from scoring.stats.tests.synthetic import plurality, random_votes, reliability_matrix


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_alpha_matches_krippendorff_with_missing_data(seed, level):
    rng = np.random.default_rng(seed)
    # Sparse voting leaves many items with 0 or 1 votes, which alpha must skip.
    votes = random_votes(rng, n_items=120, n_judges=7, vote_probability=0.35)
    expected = krippendorff.alpha(reliability_data=reliability_matrix(votes), level_of_measurement=level)
    ours = krippendorff_alpha(votes.item, votes.choice, n_items=votes.n_items, level=level)
    assert ours == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_alpha_matches_krippendorff_when_ties_are_never_used(level):
    rng = np.random.default_rng(11)
    votes = random_votes(rng, n_items=80, n_judges=4)
    no_ties = votes.choice != 1
    item, judge, choice = votes.item[no_ties], votes.judge[no_ties], votes.choice[no_ties]
    matrix = np.full((votes.n_judges, votes.n_items), np.nan)
    matrix[judge, item] = choice
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
    ours = krippendorff_alpha(item, choice, n_items=votes.n_items, level=level)
    assert ours == pytest.approx(expected, abs=1e-9)


def test_alpha_hand_worked():
    # Two coders, three items: (A, A), (B, B), (A, B). Coincidences: o_AA = 2, o_BB = 2, o_AB = o_BA = 1,
    # n_A = n_B = 3, n = 6. Nominal alpha = 1 - (n - 1) * 2 / (2 * n_A * n_B) = 1 - 5 * 2 / 18 = 4/9.
    item = np.array([0, 0, 1, 1, 2, 2])
    choice = np.array([0, 0, 2, 2, 0, 2])
    assert krippendorff_alpha(item, choice, n_items=3) == pytest.approx(4 / 9)


def test_alpha_is_nan_without_variation():
    item = np.array([0, 0, 1, 1])
    assert np.isnan(krippendorff_alpha(item, np.array([2, 2, 2, 2]), n_items=2))


def test_alpha_rejects_unknown_level():
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(np.array([0, 0]), np.array([0, 2]), n_items=1, level="interval")  # type: ignore[arg-type]


@pytest.mark.parametrize("rule", ["strict", "tie"])
def test_annotator_reliability_matches_row_by_row_reference(rule):
    rng = np.random.default_rng(7)
    votes = random_votes(rng, n_items=60, n_judges=6)
    gold = np.where(rng.random(votes.n_items) < 0.3, rng.integers(0, 3, votes.n_items), -1)
    seconds = rng.exponential(20.0, votes.item.size)
    seconds[rng.random(votes.item.size) < 0.1] = np.nan  # some durations were not recorded

    result = annotator_reliability(
        votes.item,
        votes.judge,
        votes.choice,
        n_items=votes.n_items,
        n_judges=8,
        gold=gold,
        seconds=seconds,
        rule=rule,
    )

    for j in range(8):
        rows = np.flatnonzero(votes.judge == j)
        compared = matches = n_gold = correct = left_out = 0
        for r in rows:
            others = (votes.item == votes.item[r]) & (np.arange(votes.item.size) != r)
            loo = plurality(votes.choice[others].tolist(), rule=rule)
            left_out += int(bool(others.any()) and loo < 0)
            if loo >= 0:
                compared += 1
                matches += int(votes.choice[r] == loo)
            if gold[votes.item[r]] >= 0:
                n_gold += 1
                correct += int(votes.choice[r] == gold[votes.item[r]])
        assert result.n_judgments[j] == rows.size
        assert result.n_compared[j] == compared
        assert result.n_left_out[j] == left_out
        assert result.n_gold[j] == n_gold
        np.testing.assert_allclose(result.majority_agreement[j], matches / compared if compared else np.nan)
        np.testing.assert_allclose(result.gold_accuracy[j], correct / n_gold if n_gold else np.nan)
        timed = seconds[rows][~np.isnan(seconds[rows])]
        np.testing.assert_allclose(result.median_seconds[j], np.median(timed) if timed.size else np.nan)
    # The strict rule must have met split leave-one-out majorities here, or this test checks nothing.
    assert (result.n_left_out.sum() > 0) == (rule == "strict")
    # Judges 6 and 7 never voted: every figure is missing, not zero.
    assert np.isnan(result.majority_agreement[6:]).all()
    assert np.isnan(result.median_seconds[6:]).all()


def test_annotator_reliability_with_one_other_judge_compares_to_that_judge():
    item = np.array([0, 0])
    result = annotator_reliability(item, np.array([0, 1]), np.array([0, 2]), n_items=1)
    assert result.n_compared.tolist() == [1, 1]
    assert result.majority_agreement.tolist() == [0.0, 0.0]
    assert np.isnan(result.gold_accuracy).all()
