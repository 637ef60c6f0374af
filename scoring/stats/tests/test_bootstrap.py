import numpy as np
import pytest
from scipy import sparse

from scoring.stats import (
    ItemStatistic,
    agreement_statistic,
    bootstrap_interval,
    bootstrap_intervals,
    group_pair_counts,
    headline_statistics,
    resampled_column_sums,
    resampled_sums_with_groups,
)
from scoring.stats import bootstrap as bootstrap_module
from scoring.stats.tests.synthetic import random_votes
from scoring.stats.votes import ratio


def _ratio_of_sums(sums):
    return ratio(sums[..., 0], sums[..., 1])


def test_resampled_sums_equal_summing_the_drawn_items():
    rng = np.random.default_rng(0)
    columns = rng.random((37, 3))
    drawn = np.random.default_rng(5).integers(0, 37, size=(20, 37))
    expected = columns[drawn].sum(axis=1)
    np.testing.assert_allclose(resampled_column_sums(columns, n_resamples=20, seed=5), expected)


def test_resampled_sums_do_not_depend_on_chunking(monkeypatch):
    columns = np.random.default_rng(1).random((50, 2))
    whole = resampled_column_sums(columns, n_resamples=30, seed=3)
    monkeypatch.setattr(bootstrap_module, "_CHUNK_ENTRIES", 50 * 7)  # 7 resamples per chunk
    np.testing.assert_allclose(resampled_column_sums(columns, n_resamples=30, seed=3), whole)


def test_sparse_and_dense_columns_give_the_same_sums():
    dense = np.random.default_rng(2).random((40, 5)) * (np.random.default_rng(3).random((40, 5)) < 0.3)
    np.testing.assert_allclose(
        resampled_column_sums(sparse.csr_matrix(dense), n_resamples=15, seed=1),
        resampled_column_sums(dense, n_resamples=15, seed=1),
    )


def test_same_seed_same_interval_other_seed_other_interval():
    columns = np.random.default_rng(4).random((100, 2)) + 0.5
    stat = ItemStatistic(columns=columns, from_sums=_ratio_of_sums)
    first = bootstrap_interval(stat, n_resamples=200, seed=1)
    assert bootstrap_interval(stat, n_resamples=200, seed=1) == first
    assert bootstrap_interval(stat, n_resamples=200, seed=2) != first


def test_statistics_bootstrapped_together_match_bootstrapped_alone():
    rng = np.random.default_rng(5)
    votes = random_votes(rng, n_items=80, n_judges=4)
    human = votes.judge > 0
    stats = headline_statistics(votes.item, votes.choice, n_items=votes.n_items, human=human, ai=~human)
    together = bootstrap_intervals(stats, n_resamples=100, seed=9)
    for name, stat in stats.items():
        alone = bootstrap_interval(stat, n_resamples=100, seed=9)
        assert alone == pytest.approx(together[name], nan_ok=True)


def test_interval_of_a_mean_is_close_to_the_normal_approximation():
    values = np.random.default_rng(6).normal(size=2000)
    columns = np.column_stack([values, np.ones_like(values)])
    estimate, low, high = bootstrap_interval(
        ItemStatistic(columns=columns, from_sums=_ratio_of_sums), n_resamples=2000, seed=0
    )
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert estimate == pytest.approx(values.mean())
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.1)


def test_four_times_the_items_narrows_the_interval():
    widths = []
    for n_items in (200, 800):
        votes = random_votes(np.random.default_rng(12), n_items=n_items, n_judges=4)
        everyone = np.ones(votes.item.size, dtype=bool)
        counts = group_pair_counts(votes.item, votes.choice, n_items=n_items, group1=everyone)
        _, low, high = bootstrap_interval(agreement_statistic(counts), n_resamples=500, seed=0)
        widths.append(high - low)
    # Width shrinks like 1 / sqrt(n): about half for 4x the items.
    assert widths[1] < 0.7 * widths[0]


def test_undefined_resamples_are_ignored_and_all_undefined_gives_nan():
    columns = np.zeros((10, 2))
    _, low, high = bootstrap_interval(
        ItemStatistic(columns=columns, from_sums=_ratio_of_sums), n_resamples=20
    )
    assert np.isnan(low) and np.isnan(high)


def test_statistics_over_different_items_are_refused():
    a = ItemStatistic(columns=np.ones((3, 2)), from_sums=_ratio_of_sums)
    b = ItemStatistic(columns=np.ones((4, 2)), from_sums=_ratio_of_sums)
    with pytest.raises(ValueError, match="same items"):
        bootstrap_intervals({"a": a, "b": b})


def test_level_outside_zero_one_is_refused():
    stat = ItemStatistic(columns=np.ones((3, 2)), from_sums=_ratio_of_sums)
    with pytest.raises(ValueError, match="level"):
        bootstrap_interval(stat, level=95)


def test_grouped_pass_with_sparse_columns_shares_the_plain_draws():
    rng = np.random.default_rng(6)
    plain = rng.random((45, 3))
    mostly_zero = rng.random((45, 8)) * (rng.random((45, 8)) < 0.2)
    grouped = rng.random((45, 2))
    group = rng.integers(0, 4, 45)
    sums, group_sums = resampled_sums_with_groups(
        plain,
        grouped,
        group=group,
        n_groups=4,
        n_resamples=25,
        seed=7,
        sparse_columns=sparse.csr_matrix(mostly_zero),
    )
    # The dense and sparse columns are summed on the draws resampled_column_sums makes for the seed.
    expected = resampled_column_sums(np.hstack([plain, mostly_zero]), n_resamples=25, seed=7)
    np.testing.assert_allclose(sums, expected)
    np.testing.assert_allclose(group_sums.sum(axis=1), resampled_column_sums(grouped, n_resamples=25, seed=7))
    without, _ = resampled_sums_with_groups(plain, grouped, group=group, n_groups=4, n_resamples=25, seed=7)
    np.testing.assert_allclose(without, expected[:, :3])
    with pytest.raises(ValueError, match="sparse_columns must have 45 rows"):
        resampled_sums_with_groups(
            plain, grouped, group=group, n_groups=4, sparse_columns=sparse.csr_matrix((44, 2))
        )
