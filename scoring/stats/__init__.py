"""Agreement, reliability, position-bias and Bradley–Terry statistics on plain numpy arrays (no Django, no Celery).

Imports numpy and scipy only; nothing here may import Django, Celery or the project's apps.

Data conventions
----------------
* A judgment's choice is an int in canonical image order: 0 = image A preferred, 1 = tie,
  2 = image B preferred. Ordinal statistics read it as A < tie < B.
* Judgments for one aspect come as long-format 1-D arrays of equal length, one row per judgment:
  ``item`` (pair index 0..n_items-1), ``judge`` (annotator index 0..n_judges-1) and ``choice``.
  Each judge votes at most once per item; for an AI asked in both presentation orders pass one trial
  (``swap_consistency`` compares the two trials). Position bias is the exception: it reads every
  judgment, both trials included, since each has its own presented order.
* The presented order of a judgment is the boolean ``a_first``: True when image A was shown first/left
  (stored "AB"), False when B was (stored "BA"). Choices stay in canonical order whatever was shown.
* ``n_items`` is always passed explicitly so every per-item array has the same length, including items
  nobody voted on; items are the unit the bootstrap resamples.
* Groups of judges (humans, one AI judge, one reward model) are boolean row masks over the long-format
  arrays, or the arrays already filtered to the group. A reward model scoring pairs is just another judge.
* The majority of an item is the plurality choice of the group's votes, under a stated ``rule``
  (``MajorityRule``): when the top count is shared (2 A vs 2 B, 1 A vs 1 tie, 1-1-1) the item has no
  single most-voted choice and

  - ``"strict"`` (the default) leaves it out: its majority is -1, like an item nobody voted on, and
    ``item_majority`` returns how many items were left out;
  - ``"tie"`` reads it as a tie majority (1), as every figure did before the rule was selectable.

  A tie that is the single most-voted choice (2 tie vs 1 A) is a tie majority under both rules.
  Functions that compute a majority take ``rule`` (``majority_vote``, ``item_majority``,
  ``annotator_reliability`` for its leave-one-out majority, ``headline_statistics``); functions that
  receive a per-item ``majority`` array (``majority_agreement``, ``majority_pair_counts``,
  ``cohen_kappa``, ``confusion_matrix``, ``item_confusion``) compare against it as given and skip items
  where it is -1, so the rule that built the array is the rule they apply.
  Gold answers use the same coding, -1 for items that are not gold.
* Agreement comes pooled over vote pairs (MT-Bench: sum agreeing / sum pairs) and item-weighted (the mean
  of per-item rates, every item counting once): ``AgreementRate.rate`` / ``.item_mean``, and
  ``agreement_statistic(counts, item_mean=...)`` for the bootstrap.
* Undefined statistics (no pairs, no variation in the data) are NaN rather than an error.

Bootstrap
---------
Each headline figure is available as an ``ItemStatistic``: a (n_items, k) table of per-item sufficient
statistics and a function of its column sums. ``bootstrap_intervals`` resamples items with
``numpy.random.default_rng(seed)``, turns each resample into item weights and evaluates all statistics on
``weights @ columns``; statistics bootstrapped together share the same resamples. That is what makes
the judge-vs-human difference of ``verdict`` a paired bootstrap: both agreements live in one table.

Fair comparisons
----------------
* ``position``: the share of a judge's non-tie choices that went to the image shown first, the two
  presentation orders weighted equally, with a flag when its interval excludes 1/2.
* ``verdict``: judge–human minus human–human agreement (item-weighted, on the items where both are
  defined), its paired interval, and the verdict "within" / "below" / "above" the range of a human
  annotator or "not enough data"; the module docstring states the rule and the minimum counts.
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
from .position import (
    MIN_DECIDED_PER_ORDER,
    PositionBias,
    PositionCounts,
    position_bias,
    position_bias_from_intervals,
    position_counts,
    position_statistics,
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
from .verdict import (
    DEFAULT_MARGIN,
    MIN_VERDICT_ITEMS,
    VERDICT_LABELS,
    HumanRangeComparison,
    Verdict,
    VerdictName,
    human_range_comparison,
    human_range_verdict,
    verdict_from_intervals,
    verdict_rule,
)
from .votes import (
    A_PREFERRED,
    B_PREFERRED,
    DEFAULT_MAJORITY_RULE,
    MAJORITY_RULES,
    TIE,
    UNDEFINED,
    Majority,
    MajorityRule,
    item_majority,
    majority_vote,
    split_items,
    vote_counts,
)

__all__ = [
    "A_PREFERRED",
    "B_PREFERRED",
    "DEFAULT_MAJORITY_RULE",
    "DEFAULT_MARGIN",
    "DEFAULT_RIDGE",
    "MAJORITY_RULES",
    "MIN_DECIDED_PER_ORDER",
    "MIN_VERDICT_ITEMS",
    "TIE",
    "UNDEFINED",
    "VERDICT_LABELS",
    "Agreement",
    "AgreementRate",
    "AnnotatorReliability",
    "HumanRangeComparison",
    "Interval",
    "ItemStatistic",
    "Leaderboard",
    "Majority",
    "MajorityRule",
    "PairCounts",
    "PositionBias",
    "PositionCounts",
    "Verdict",
    "VerdictName",
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
    "human_range_comparison",
    "human_range_verdict",
    "intervals_from_sums",
    "item_coincidences",
    "item_comparison_columns",
    "item_confusion",
    "item_majority",
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
    "position_bias",
    "position_bias_from_intervals",
    "position_counts",
    "position_statistics",
    "resampled_column_sums",
    "resampled_sums_with_groups",
    "split_items",
    "stack_statistic_columns",
    "swap_consistency",
    "swap_pair_counts",
    "verdict_from_intervals",
    "verdict_rule",
    "vote_counts",
    "win_probability",
]
