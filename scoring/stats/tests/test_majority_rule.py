"""The strict and tie majority rules against one-item-at-a-time references and scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

from scoring.stats import (
    agreement_from_counts,
    agreement_statistic,
    bootstrap_interval,
    cohen_kappa,
    confusion_matrix,
    group_pair_counts,
    headline_statistics,
    item_majority,
    majority_agreement,
    majority_pair_counts,
    majority_vote,
    point_estimates,
    vote_counts,
)
from scoring.stats.tests.synthetic import (
    SimulatedJudge,
    brute_force_bootstrap,
    brute_force_item_rate,
    item_votes,
    plurality,
    simulate_study,
)

RULES = ["strict", "tie"]


def _study(seed: int):
    # 2-4 human votes per item make splits (1 A / 1 B, 2 A / 2 tie, 1-1-1) common, so the rules differ.
    rng = np.random.default_rng(seed)
    return simulate_study(
        rng,
        n_items=300,
        votes_per_item=rng.integers(2, 5, 300),
        n_humans=8,
        judges=[SimulatedJudge("ai", noise=0.4)],
    )


def _reference(study, rule):
    """Per-item majority by the hand-coded rule, the AI's vote per item, and the kept items."""
    human_votes = item_votes(study.item[study.human_rows], study.choice[study.human_rows], study.n_items)
    majority = np.array([plurality(votes, rule=rule) for votes in human_votes])
    ai = study.rows_of("ai")
    ai_vote = np.full(study.n_items, -1)
    ai_vote[study.item[ai]] = study.choice[ai]
    kept = majority >= 0
    return majority, ai_vote, kept


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("rule", RULES)
def test_rule_matches_hand_coded_reference_and_sklearn(seed, rule):
    study = _study(seed)
    human = study.human_rows
    counts = vote_counts(study.item[human], study.choice[human], n_items=study.n_items)
    majority = item_majority(counts, rule=rule)
    expected_majority, ai_vote, kept = _reference(study, rule)
    np.testing.assert_array_equal(majority.choice, expected_majority)

    # Split items: voted items without a single most-voted choice, counted by hand.
    human_votes = item_votes(study.item[human], study.choice[human], study.n_items)
    n_split = sum(plurality(votes, rule="strict") < 0 for votes in human_votes if votes)
    assert n_split > 20  # the design must produce splits, or the two rules are not being told apart
    assert majority.n_split == n_split
    assert majority.n_voted == sum(bool(votes) for votes in human_votes)
    assert majority.n_left_out == (n_split if rule == "strict" else 0)
    assert majority.n_decided == int(kept.sum())

    ai = study.rows_of("ai")
    item, choice = study.item[ai], study.choice[ai]
    # The AI voted on every item, so the kept items are exactly those with a majority.
    judge_kept, majority_kept = ai_vote[kept], expected_majority[kept]
    for weights in (None, "linear"):
        assert cohen_kappa(item, choice, majority=majority.choice, weights=weights) == pytest.approx(
            cohen_kappa_score(judge_kept, majority_kept, labels=[0, 1, 2], weights=weights), abs=1e-12
        )
    np.testing.assert_array_equal(
        confusion_matrix(item, choice, majority=majority.choice),
        sklearn_confusion_matrix(judge_kept, majority_kept, labels=[0, 1, 2]),
    )
    agreement = majority_agreement(item, choice, majority=majority.choice)
    assert agreement.with_ties.n_pairs == kept.sum()
    assert agreement.with_ties.rate == pytest.approx(np.mean(judge_kept == majority_kept))
    decided = (judge_kept != 1) & (majority_kept != 1)
    assert agreement.without_ties.rate == pytest.approx(
        np.mean(judge_kept[decided] == majority_kept[decided])
    )


def test_strict_leaves_out_split_items_that_tie_counts_as_ties():
    study = _study(2)
    human = study.human_rows
    counts = vote_counts(study.item[human], study.choice[human], n_items=study.n_items)
    strict, tie = majority_vote(counts, rule="strict"), majority_vote(counts, rule="tie")
    differs = strict != tie
    assert differs.any()
    assert (strict[differs] == -1).all() and (tie[differs] == 1).all()
    ai = study.rows_of("ai")
    n_strict = majority_agreement(study.item[ai], study.choice[ai], majority=strict).with_ties.n_pairs
    n_tie = majority_agreement(study.item[ai], study.choice[ai], majority=tie).with_ties.n_pairs
    assert n_tie - n_strict == differs.sum() == item_majority(counts, rule="strict").n_left_out


@pytest.mark.parametrize("rule", RULES)
def test_headline_kappa_follows_the_rule(rule):
    study = _study(3)
    stats = headline_statistics(
        study.item, study.choice, n_items=study.n_items, human=study.human_rows, ai=study.rows_of("ai")
    )
    stats_rule = headline_statistics(
        study.item,
        study.choice,
        n_items=study.n_items,
        human=study.human_rows,
        ai=study.rows_of("ai"),
        rule=rule,
    )
    expected_majority, ai_vote, kept = _reference(study, rule)
    kappa = point_estimates(stats_rule)["ai_majority_kappa"]
    assert kappa == pytest.approx(cohen_kappa_score(ai_vote[kept], expected_majority[kept], labels=[0, 1, 2]))
    # The default is the strict rule.
    if rule == "strict":
        assert point_estimates(stats) == pytest.approx(point_estimates(stats_rule), nan_ok=True)


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="majority rule"):
        majority_vote(np.array([[1, 0, 1]]), rule="plurality")  # type: ignore[arg-type]


@pytest.mark.parametrize("ties", [True, False])
def test_item_weighted_agreement_matches_mean_of_per_item_rates_and_brute_force_bootstrap(ties):
    study = _study(4)
    human = study.human_rows
    ai = study.rows_of("ai")
    n_items = 40  # a small case for the explicit resampling loop
    keep = study.item < n_items
    item, choice = study.item[keep], study.choice[keep]
    counts = group_pair_counts(item, choice, n_items=n_items, group1=ai[keep], group2=human[keep])
    human_votes = item_votes(item[human[keep]], choice[human[keep]], n_items)
    ai_votes = item_votes(item[ai[keep]], choice[ai[keep]], n_items)
    rates = [brute_force_item_rate(ai_votes[i], human_votes[i], ties=ties) for i in range(n_items)]

    summary = agreement_from_counts(counts)
    rate = summary.with_ties if ties else summary.without_ties
    statistic = agreement_statistic(counts, ties=ties, item_mean=True)
    expected = np.mean([r for r in rates if r is not None])
    assert rate.item_mean == pytest.approx(expected)
    assert statistic.estimate() == pytest.approx(expected)

    def resampled(drawn):
        values = [rates[i] for i in drawn if rates[i] is not None]
        return np.mean(values) if values else np.nan

    _, low, high = bootstrap_interval(statistic, n_resamples=300, seed=7)
    assert (low, high) == pytest.approx(brute_force_bootstrap(n_items, resampled, n_resamples=300, seed=7))


def test_majority_pair_counts_keep_tie_majority_under_both_rules():
    # 2 tie votes against 1 A: the tie is the single most-voted choice, a tie majority under either rule.
    counts = np.array([[1, 2, 0]])
    for rule in RULES:
        majority = majority_vote(counts, rule=rule)
        assert majority.tolist() == [1]
        assert majority_pair_counts(np.array([0]), np.array([1]), majority=majority).agreeing.tolist() == [1]
