"""Judge vs human agreement, paired over items: hand-worked figures, brute-force bootstrap, the verdicts."""

import numpy as np
import pytest

from scoring.stats import (
    Interval,
    ItemStatistic,
    bootstrap_intervals,
    group_pair_counts,
    human_range_comparison,
    human_range_verdict,
    verdict_from_intervals,
    verdict_rule,
)
from scoring.stats.tests.synthetic import (
    SimulatedJudge,
    brute_force_bootstrap,
    brute_force_item_rate,
    item_votes,
    simulate_study,
)
from scoring.stats.votes import ratio

A, TIE, B = 0, 1, 2


def _comparison(study, judge_name, *, ties=True):
    judge, human = study.rows_of(judge_name), study.human_rows
    return human_range_comparison(
        judge_pairs=group_pair_counts(
            study.item, study.choice, n_items=study.n_items, group1=judge, group2=human
        ),
        human_pairs=group_pair_counts(study.item, study.choice, n_items=study.n_items, group1=human),
        ties=ties,
    )


def test_hand_worked_comparison():
    # Item 0: judge A; humans A, A, B -> judge-human 2/3, human-human 1/3.
    # Item 1: judge B; humans B, tie  -> judge-human 1/2, human-human 0.
    # Item 2: judge A; one human A     -> no human-human pair: not compared.
    # Item 3: humans A, A, no judge    -> not compared.
    item = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
    choice = np.array([A, A, A, B, B, B, TIE, A, A, A, A])
    judge = np.array([True, False, False, False, True, False, False, True, False, False, False])
    human = ~judge
    comparison = human_range_comparison(
        judge_pairs=group_pair_counts(item, choice, n_items=4, group1=judge, group2=human),
        human_pairs=group_pair_counts(item, choice, n_items=4, group1=human),
    )
    assert comparison.n_items == 2
    assert (comparison.n_judge_pairs, comparison.n_human_pairs) == (3 + 2, 3 + 1)
    estimates = {name: stat.estimate() for name, stat in comparison.statistics.items()}
    assert estimates["judge_human"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert estimates["human_human"] == pytest.approx((1 / 3 + 0) / 2)
    assert estimates["difference"] == pytest.approx((2 / 3 + 1 / 2) / 2 - (1 / 3 + 0) / 2)

    # Without ties item 1 keeps only the (B, B) judge-human pair and has no human-human pair left.
    no_ties = human_range_comparison(
        judge_pairs=group_pair_counts(item, choice, n_items=4, group1=judge, group2=human),
        human_pairs=group_pair_counts(item, choice, n_items=4, group1=human),
        ties=False,
    )
    assert no_ties.n_items == 1
    assert no_ties.statistics["difference"].estimate() == pytest.approx(2 / 3 - 1 / 3)


@pytest.mark.parametrize("ties", [True, False])
def test_paired_interval_matches_brute_force_bootstrap(ties):
    study = simulate_study(
        np.random.default_rng(0),
        n_items=30,
        votes_per_item=np.random.default_rng(1).integers(1, 5, 30),
        n_humans=6,
        judges=[SimulatedJudge("ai", noise=0.3)],
    )
    judge, human = study.rows_of("ai"), study.human_rows
    judge_votes = item_votes(study.item[judge], study.choice[judge], study.n_items)
    human_votes = item_votes(study.item[human], study.choice[human], study.n_items)
    per_item = [
        (
            brute_force_item_rate(judge_votes[i], human_votes[i], ties=ties),
            brute_force_item_rate(human_votes[i], None, ties=ties),
        )
        for i in range(study.n_items)
    ]

    def paired(drawn, part):
        # Both figures from the same drawn items: that is what makes the bootstrap paired.
        rows = [per_item[i] for i in drawn if None not in per_item[i]]
        if not rows:
            return np.nan
        judge_mean, human_mean = np.mean([r[0] for r in rows]), np.mean([r[1] for r in rows])
        return {"difference": judge_mean - human_mean, "judge_human": judge_mean, "human_human": human_mean}[
            part
        ]

    intervals = bootstrap_intervals(_comparison(study, "ai", ties=ties).statistics, n_resamples=300, seed=5)
    for part, interval in intervals.items():
        expected = brute_force_bootstrap(30, lambda d, part=part: paired(d, part), n_resamples=300, seed=5)
        assert (interval.low, interval.high) == pytest.approx(expected), part
        assert interval.estimate == pytest.approx(paired(range(30), part))


def test_pairing_narrows_the_interval():
    # The two figures move together over item resamples (hard items are hard for everyone); a paired
    # interval of the difference is narrower than combining independently resampled figures.
    study = simulate_study(
        np.random.default_rng(2), n_items=300, votes_per_item=3, n_humans=10, judges=[SimulatedJudge("ai")]
    )
    comparison = _comparison(study, "ai")
    stats = comparison.statistics
    paired = bootstrap_intervals({"d": stats["difference"]}, n_resamples=500, seed=1)["d"]
    columns = stats["difference"].columns

    def mean_of(k):
        return ItemStatistic(columns=columns, from_sums=lambda s, k=k: ratio(s[..., k], s[..., 2]))

    judge = bootstrap_intervals({"j": mean_of(0)}, n_resamples=500, seed=1)["j"]
    human = bootstrap_intervals({"h": mean_of(1)}, n_resamples=500, seed=2)["h"]
    unpaired_half_width = np.hypot(judge.high - judge.low, human.high - human.low) / 2
    assert (paired.high - paired.low) / 2 < 0.8 * unpaired_half_width


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_verdicts_for_simulated_judges(seed):
    # "like": votes exactly like one more human; "weak": 70% of its answers are random; "consensus":
    # always the item's most likely choice; "vp-score": a reward-model annotator, same row, same function.
    # 1500 pairs: enough that a judge at parity has an interval within the 0.05 margin (half-width ~0.02).
    judges = [
        SimulatedJudge("like"),
        SimulatedJudge("weak", noise=0.7),
        SimulatedJudge("consensus", mode=1.0),
        SimulatedJudge("vp-score", noise=0.7),
    ]
    study = simulate_study(
        np.random.default_rng(seed), n_items=1500, votes_per_item=3, n_humans=10, judges=judges
    )
    expected = {"like": "within", "weak": "below", "consensus": "above", "vp-score": "below"}
    for name, verdict in expected.items():
        result = human_range_verdict(
            study.item, study.choice, n_items=study.n_items, judge=study.rows_of(name), human=study.human_rows
        )
        assert result.verdict == verdict, (name, result.difference, result.reason)
        assert result.n_items == 1500
        assert result.difference.estimate == pytest.approx(
            result.judge_human.estimate - result.human_human.estimate
        )
    weak = human_range_verdict(
        study.item,
        study.choice,
        n_items=1500,
        judge=study.rows_of("weak"),
        human=study.human_rows,
        ties=False,
    )
    assert weak.verdict == "below" and not weak.ties


def test_few_pairs_is_not_enough_data_whatever_the_judge():
    study = simulate_study(
        np.random.default_rng(3),
        n_items=20,
        votes_per_item=3,
        n_humans=5,
        judges=[SimulatedJudge("weak", noise=1.0)],
    )
    result = human_range_verdict(
        study.item, study.choice, n_items=20, judge=study.rows_of("weak"), human=study.human_rows
    )
    assert result.verdict == "not enough data" and result.label == "not enough data"
    assert "20 pairs" in result.reason and "30 are needed" in result.reason


def test_matched_items_remove_the_gap_pooled_rates_show_when_votes_follow_difficulty():
    # Easy pairs get 6 human votes, hard ones 2. Pooled rates weight an item by m judge-human pairs but
    # m(m-1)/2 human-human pairs, so a judge exchangeable with the humans looks measurably worse pooled.
    def by_difficulty(distribution):
        return np.where(distribution.max(axis=1) > 0.8, 6, 2)

    study = simulate_study(
        np.random.default_rng(1),
        n_items=800,
        votes_per_item=by_difficulty,
        n_humans=12,
        judges=[SimulatedJudge("like")],
    )
    judge, human = study.rows_of("like"), study.human_rows
    judge_pairs = group_pair_counts(study.item, study.choice, n_items=800, group1=judge, group2=human)
    human_pairs = group_pair_counts(study.item, study.choice, n_items=800, group1=human)
    pooled_columns = np.column_stack(
        [judge_pairs.agreeing, judge_pairs.pairs, human_pairs.agreeing, human_pairs.pairs]
    ).astype(np.float64)
    pooled = ItemStatistic(
        columns=pooled_columns, from_sums=lambda s: ratio(s[..., 0], s[..., 1]) - ratio(s[..., 2], s[..., 3])
    )
    pooled_interval = bootstrap_intervals({"pooled": pooled})["pooled"]
    assert pooled_interval.high < -0.04

    matched = human_range_verdict(study.item, study.choice, n_items=800, judge=judge, human=human)
    assert matched.difference.low < 0 < matched.difference.high
    assert matched.verdict == "within"


def test_exchangeable_judge_is_unbiased_and_the_interval_covers_zero_about_95_percent():
    estimates, covered = [], 0
    for seed in range(80):
        study = simulate_study(
            np.random.default_rng(100 + seed),
            n_items=150,
            votes_per_item=lambda d: np.where(d.max(axis=1) > 0.8, 5, 2),
            n_humans=8,
            judges=[SimulatedJudge("like")],
        )
        interval = bootstrap_intervals(_comparison(study, "like").statistics, n_resamples=300, seed=seed)[
            "difference"
        ]
        estimates.append(interval.estimate)
        covered += interval.low <= 0 <= interval.high
    standard_error = np.std(estimates) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates)) < 3 * standard_error
    assert 0.85 <= covered / 80 <= 1.0


@pytest.mark.parametrize(
    ("low", "high", "n_items", "expected"),
    [
        (-0.20, -0.10, 100, "below"),
        (-0.03, -0.001, 100, "below"),  # measurably below, even if by little
        (0.01, 0.08, 100, "above"),
        (-0.04, 0.03, 100, "within"),
        (-0.05, 0.03, 100, "within"),  # the margin itself is allowed
        (-0.09, 0.03, 100, "not enough data"),  # holds 0 but cannot rule out a shortfall beyond the margin
        (-0.01, 0.01, 29, "not enough data"),  # too few pairs, however narrow
        (float("nan"), float("nan"), 100, "not enough data"),
    ],
)
def test_verdict_rule(low, high, n_items, expected):
    verdict, reason = verdict_rule(difference=Interval(0.0, low, high), n_items=n_items)
    assert verdict == expected
    assert reason


def test_verdict_rule_settings_are_checked_and_recorded():
    with pytest.raises(ValueError, match="margin"):
        verdict_rule(difference=Interval(0, -0.1, 0.1), n_items=100, margin=-0.1)
    with pytest.raises(ValueError, match="min_items"):
        verdict_rule(difference=Interval(0, -0.1, 0.1), n_items=100, min_items=0)
    assert verdict_rule(difference=Interval(0, -0.09, 0.03), n_items=100, margin=0.1)[0] == "within"
    assert verdict_rule(difference=Interval(0, -0.01, 0.01), n_items=10, min_items=10)[0] == "within"
    study = simulate_study(
        np.random.default_rng(4), n_items=40, votes_per_item=3, n_humans=5, judges=[SimulatedJudge("ai")]
    )
    comparison = _comparison(study, "ai")
    interval = Interval(0.0, -0.01, 0.02)
    result = verdict_from_intervals(
        comparison, difference=interval, judge_human=interval, human_human=interval, margin=0.02, min_items=40
    )
    assert (result.verdict, result.margin, result.min_items, result.n_items) == ("within", 0.02, 40, 40)
    assert result.label == "within the range of a human annotator"


def test_bad_input_is_refused():
    item, choice = np.array([0, 0]), np.array([A, B])
    with pytest.raises(ValueError, match="overlap"):
        human_range_verdict(
            item, choice, n_items=1, judge=np.array([True, True]), human=np.array([True, False])
        )
    small = group_pair_counts(item, choice, n_items=1, group1=np.array([True, True]))
    large = group_pair_counts(item, choice, n_items=2, group1=np.array([True, True]))
    with pytest.raises(ValueError, match="different items"):
        human_range_comparison(judge_pairs=small, human_pairs=large)
