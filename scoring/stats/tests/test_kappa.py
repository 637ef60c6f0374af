import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa

from scoring.stats import cohen_kappa, confusion_matrix, fleiss_kappa, majority_vote, vote_counts
from scoring.stats.tests.synthetic import random_votes


def _ai_and_majority(seed: int):
    rng = np.random.default_rng(seed)
    humans = random_votes(rng, n_items=200, n_judges=5)
    majority = majority_vote(vote_counts(humans.item, humans.choice, n_items=humans.n_items))
    # The AI follows the majority 60% of the time, otherwise answers at random.
    ai_item = np.arange(humans.n_items)
    follows = (rng.random(humans.n_items) < 0.6) & (majority >= 0)
    ai_choice = np.where(follows, majority, rng.integers(0, 3, humans.n_items))
    return ai_item, ai_choice, majority


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weights", [None, "linear"])
def test_cohen_kappa_matches_sklearn(seed, weights):
    item, ai_choice, majority = _ai_and_majority(seed)
    has_majority = majority[item] >= 0
    expected = cohen_kappa_score(ai_choice[has_majority], majority[item][has_majority], weights=weights)
    assert cohen_kappa(item, ai_choice, majority=majority, weights=weights) == pytest.approx(
        expected, abs=1e-12
    )


@pytest.mark.parametrize("weights", [None, "linear"])
def test_cohen_kappa_matches_sklearn_when_a_category_is_never_used(weights):
    # No ties anywhere: sklearn then only knows labels {0, 2}; our fixed 3x3 table must agree.
    rng = np.random.default_rng(9)
    majority = rng.choice([0, 2], size=80)
    ai_choice = np.where(rng.random(80) < 0.7, majority, 2 - majority)
    expected = cohen_kappa_score(ai_choice, majority, weights=weights)
    assert cohen_kappa(np.arange(80), ai_choice, majority=majority, weights=weights) == pytest.approx(
        expected
    )


def test_confusion_matrix_rows_are_judge_columns_are_majority():
    majority = np.array([0, 0, 2, 1, -1])
    table = confusion_matrix(np.arange(5), np.array([0, 2, 2, 0, 1]), majority=majority)
    expected = np.zeros((3, 3), dtype=int)
    expected[0, 0] = 1  # item 0: AI A, majority A
    expected[2, 0] = 1  # item 1: AI B, majority A
    expected[2, 2] = 1  # item 2
    expected[0, 1] = 1  # item 3: AI A, majority tie; item 4 has no majority
    np.testing.assert_array_equal(table, expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_fleiss_kappa_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)
    votes = random_votes(rng, n_items=150, n_judges=4, vote_probability=1.0)
    table = vote_counts(votes.item, votes.choice, n_items=votes.n_items)
    expected = statsmodels_fleiss_kappa(table, method="fleiss")
    assert fleiss_kappa(votes.item, votes.choice, n_items=votes.n_items) == pytest.approx(expected, abs=1e-12)


def test_fleiss_kappa_leaves_out_items_nobody_voted_on():
    rng = np.random.default_rng(2)
    votes = random_votes(rng, n_items=50, n_judges=3, vote_probability=1.0)
    table = vote_counts(votes.item, votes.choice, n_items=votes.n_items)
    # Same votes, but indexed among 80 items of which 30 have no human votes on this aspect.
    shifted = fleiss_kappa(votes.item + 30, votes.choice, n_items=80)
    assert shifted == pytest.approx(statsmodels_fleiss_kappa(table), abs=1e-12)


def test_fleiss_kappa_refuses_incomplete_design():
    item = np.array([0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="same number of votes"):
        fleiss_kappa(item, np.array([0, 0, 1, 2, 2]), n_items=2)


def test_fleiss_kappa_refuses_single_votes():
    with pytest.raises(ValueError, match="at least 2"):
        fleiss_kappa(np.array([0, 1]), np.array([0, 2]), n_items=2)
