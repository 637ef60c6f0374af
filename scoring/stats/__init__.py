"""Agreement, reliability and Bradley–Terry statistics on plain numpy arrays (no Django, no Celery).

Data conventions
----------------
* A judgment's choice is an int in canonical image order: 0 = image A preferred, 1 = tie,
  2 = image B preferred. Ordinal statistics read it as A < tie < B.
* Judgments for one aspect come as long-format 1-D arrays of equal length, one row per judgment:
  ``item`` (pair index 0..n_items-1), ``judge`` (annotator index 0..n_judges-1) and ``choice``.
  Each judge votes at most once per item; for an AI asked in both presentation orders pass one trial
  (``swap_consistency`` compares the two trials).
* ``n_items`` is always passed explicitly so every per-item array has the same length, including items
  nobody voted on; items are the unit the bootstrap resamples.
* Groups of judges (humans, one AI judge) are boolean row masks over the long-format arrays, or the
  arrays already filtered to the group.
* The majority of an item is the plurality choice of the group's votes; when the top count is shared
  (2 A vs 2 B, 1 A vs 1 tie) the majority is a tie (1). An item without votes has majority -1.
  Gold answers use the same coding, -1 for items that are not gold.
* Undefined statistics (no pairs, no variation in the data) are NaN rather than an error.

Bootstrap
---------
Each headline figure is available as an ``ItemStatistic``: a (n_items, k) table of per-item sufficient
statistics and a function of its column sums. ``bootstrap_intervals`` resamples items with
``numpy.random.default_rng(seed)``, turns each resample into item weights and evaluates all statistics on
``weights @ columns``; statistics bootstrapped together share the same resamples.
"""

from .agreement import (
    Agreement,
    AgreementRate,
    PairCounts,
    agreement_from_counts,
    agreement_statistic,
    group_agreement,
    group_pair_counts,
    majority_agreement,
    majority_pair_counts,
    swap_consistency,
    swap_pair_counts,
)
from .bootstrap import (
    Interval,
    ItemStatistic,
    bootstrap_interval,
    bootstrap_intervals,
    intervals_from_sums,
    percentile_interval,
    resampled_column_sums,
    resampled_sums_with_groups,
    stack_statistic_columns,
)
from .bradley_terry import (
    DEFAULT_RIDGE,
    Leaderboard,
    bradley_terry,
    bradley_terry_leaderboard,
    comparison_columns,
    fit_strengths,
    item_comparison_columns,
    kendall_tau,
    leaderboard_from_pair_sums,
    win_probability,
)
from .kappa import (
    cohen_kappa,
    confusion_matrix,
    fleiss_kappa,
    fleiss_statistic,
    item_confusion,
    kappa_from_table,
    kappa_statistic,
)
from .reliability import (
    AnnotatorReliability,
    alpha_from_coincidences,
    alpha_statistic,
    annotator_reliability,
    item_coincidences,
    krippendorff_alpha,
)
from .report import headline_statistics, point_estimates
from .votes import A_PREFERRED, B_PREFERRED, TIE, UNDEFINED, majority_vote, vote_counts

__all__ = [
    "A_PREFERRED",
    "B_PREFERRED",
    "DEFAULT_RIDGE",
    "TIE",
    "UNDEFINED",
    "Agreement",
    "AgreementRate",
    "AnnotatorReliability",
    "Interval",
    "ItemStatistic",
    "Leaderboard",
    "PairCounts",
    "agreement_from_counts",
    "agreement_statistic",
    "alpha_from_coincidences",
    "alpha_statistic",
    "annotator_reliability",
    "bootstrap_interval",
    "bootstrap_intervals",
    "bradley_terry",
    "bradley_terry_leaderboard",
    "cohen_kappa",
    "comparison_columns",
    "confusion_matrix",
    "fit_strengths",
    "fleiss_kappa",
    "fleiss_statistic",
    "group_agreement",
    "group_pair_counts",
    "headline_statistics",
    "intervals_from_sums",
    "item_comparison_columns",
    "item_coincidences",
    "item_confusion",
    "kappa_from_table",
    "kappa_statistic",
    "kendall_tau",
    "krippendorff_alpha",
    "leaderboard_from_pair_sums",
    "majority_agreement",
    "majority_pair_counts",
    "majority_vote",
    "percentile_interval",
    "point_estimates",
    "resampled_column_sums",
    "resampled_sums_with_groups",
    "stack_statistic_columns",
    "swap_consistency",
    "swap_pair_counts",
    "vote_counts",
    "win_probability",
]
