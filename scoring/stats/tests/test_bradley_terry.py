import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize
from scipy.special import expit

from scoring.stats import (
    DEFAULT_RIDGE,
    bradley_terry,
    bradley_terry_leaderboard,
    fit_strengths,
    kendall_tau,
    win_probability,
)


def _simulate(rng, strengths, n_comparisons, tie_rate=0.2):
    """Random generator pairs; ties with fixed probability, otherwise a Bradley–Terry draw."""
    g = len(strengths)
    gen_a = rng.integers(0, g, n_comparisons)
    gen_b = (gen_a + rng.integers(1, g, n_comparisons)) % g
    a_wins = rng.random(n_comparisons) < expit(strengths[gen_a] - strengths[gen_b])
    outcome = np.where(a_wins, 0, 2)
    outcome[rng.random(n_comparisons) < tie_rate] = 1
    return gen_a, gen_b, outcome


def _penalised_negative_log_likelihood(theta, gen_a, gen_b, outcome, ridge):
    score_a = (2 - outcome) / 2
    diff = theta[gen_a] - theta[gen_b]
    log_lik = score_a * -np.logaddexp(0, -diff) + (1 - score_a) * -np.logaddexp(0, diff)
    return -log_lik.sum() + ridge / 2 * (theta**2).sum()


def test_matches_a_general_purpose_optimiser():
    rng = np.random.default_rng(0)
    gen_a, gen_b, outcome = _simulate(rng, np.array([0.3, -1.0, 0.8, 0.0, -0.2]), 400)
    ours = bradley_terry(gen_a, gen_b, outcome, n_generators=5, ridge=0.05)
    reference = optimize.minimize(
        _penalised_negative_log_likelihood,
        np.zeros(5),
        args=(gen_a, gen_b, outcome, 0.05),
        method="BFGS",
        options={"gtol": 1e-10},
    ).x
    np.testing.assert_allclose(ours, reference - reference.mean(), atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0.6, max_value=1.5), min_size=2, max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_recovers_the_order_of_known_strengths(gaps, seed):
    strengths = np.concatenate([[0.0], np.cumsum(gaps)])
    strengths = strengths[::-1].copy()  # generator 0 is the strongest
    gen_a, gen_b, outcome = _simulate(np.random.default_rng(seed), strengths, 600 * len(strengths))
    fitted = bradley_terry(gen_a, gen_b, outcome, n_generators=len(strengths))
    assert kendall_tau(fitted, strengths) == pytest.approx(1.0)
    assert fitted.mean() == pytest.approx(0.0, abs=1e-9)


def test_disconnected_graph_and_unbeaten_generators_stay_finite():
    # {0, 1}: 0 always wins. {2, 3}: 3 always wins. Generator 4 never plays.
    gen_a = np.array([0, 0, 0, 2, 2])
    gen_b = np.array([1, 1, 1, 3, 3])
    outcome = np.array([0, 0, 0, 2, 2])
    strengths = bradley_terry(gen_a, gen_b, outcome, n_generators=5)
    assert np.isfinite(strengths).all()
    assert strengths.mean() == pytest.approx(0.0, abs=1e-9)
    assert strengths[0] > strengths[1] and strengths[3] > strengths[2]
    assert strengths[4] == pytest.approx(0.0, abs=1e-9)


def test_a_tie_is_half_a_win_each():
    strengths = bradley_terry(np.array([0]), np.array([1]), np.array([1]), n_generators=2)
    np.testing.assert_allclose(strengths, [0.0, 0.0], atol=1e-12)
    # One win and one loss each is the same evidence as two ties.
    two_ties = bradley_terry(np.array([0, 0, 2]), np.array([1, 1, 0]), np.array([1, 1, 0]), n_generators=3)
    split = bradley_terry(np.array([0, 1, 2]), np.array([1, 0, 0]), np.array([0, 0, 0]), n_generators=3)
    np.testing.assert_allclose(two_ties, split, atol=1e-9)


def test_swapping_sides_and_outcome_changes_nothing():
    rng = np.random.default_rng(1)
    gen_a, gen_b, outcome = _simulate(rng, np.array([0.5, 0.0, -0.5, 1.0]), 300)
    np.testing.assert_allclose(
        bradley_terry(gen_a, gen_b, outcome, n_generators=4),
        bradley_terry(gen_b, gen_a, 2 - outcome, n_generators=4),
        atol=1e-10,
    )


def test_self_comparisons_are_ignored():
    base = bradley_terry(np.array([0, 1]), np.array([1, 2]), np.array([0, 0]), n_generators=3)
    with_self = bradley_terry(
        np.array([0, 1, 2, 2]), np.array([1, 2, 2, 2]), np.array([0, 0, 0, 2]), n_generators=3
    )
    np.testing.assert_allclose(base, with_self)


def test_batched_fit_equals_one_fit_at_a_time():
    rng = np.random.default_rng(2)
    counts = rng.integers(0, 20, size=(6, 4, 4)).astype(float)
    counts = np.triu(counts, 1)
    counts = counts + np.swapaxes(counts, 1, 2)
    wins = rng.random((6, 4, 4)) * counts
    wins = np.triu(wins, 1) + np.swapaxes(np.triu(counts - wins, 1), 1, 2)
    batched = fit_strengths(wins, counts)
    for b in range(6):
        np.testing.assert_allclose(
            batched[b], fit_strengths(wins[b : b + 1], counts[b : b + 1])[0], atol=1e-10
        )


def test_leaderboard_intervals_contain_the_estimate_and_count_comparisons():
    rng = np.random.default_rng(3)
    n_items = 300
    gen_a, gen_b, _ = _simulate(rng, np.zeros(4), n_items)
    # Three votes per item (pair), as in a campaign with three humans per pair.
    item = np.repeat(np.arange(n_items), 3)
    strengths = np.array([1.0, 0.3, -0.2, -1.1])
    a, b = gen_a[item], gen_b[item]
    outcome = np.where(rng.random(item.size) < expit(strengths[a] - strengths[b]), 0, 2)

    board = bradley_terry_leaderboard(
        a, b, outcome, n_generators=4, item=item, n_items=n_items, n_resamples=300
    )

    np.testing.assert_allclose(board.strengths, bradley_terry(a, b, outcome, n_generators=4))
    assert ((board.low <= board.strengths) & (board.strengths <= board.high)).all()
    assert board.n_comparisons.tolist() == [int(((a == g) | (b == g)).sum()) for g in range(4)]
    by_vote = bradley_terry_leaderboard(a, b, outcome, n_generators=4, n_resamples=300)
    np.testing.assert_allclose(by_vote.strengths, board.strengths)


def test_ridge_must_be_positive():
    with pytest.raises(ValueError, match="ridge"):
        bradley_terry(np.array([0]), np.array([1]), np.array([0]), n_generators=2, ridge=0.0)
    assert DEFAULT_RIDGE > 0


def test_win_probability_is_the_model_probability():
    p = win_probability(np.array([0.0, np.log(3.0)]))
    assert p[1, 0] == pytest.approx(0.75)
    assert p[0, 1] == pytest.approx(0.25)


def test_kendall_tau_matches_counting_pairs():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=9), rng.normal(size=9)
    signs = [np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i, j in itertools.combinations(range(9), 2)]
    assert kendall_tau(x, y) == pytest.approx(np.mean(signs))
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
