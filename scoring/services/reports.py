"""Agreement reports: judgments -> numpy arrays -> scoring.stats -> one JSON-ready dict, cached as a Report.

The schema of the dict is documented in docs/report-schema.md; bump REPORT_SCHEMA_VERSION when a field
changes meaning or goes away. Every figure of every aspect (agreement, kappa, alpha, Fleiss, swap
consistency, position bias, the human-range verdict) and every Bradley–Terry leaderboard is bootstrapped
over the *same* pair resamples, drawn once: the headline columns, the per-human position columns (sparse:
each human judged few pairs) and the per-generator-pair leaderboard columns go through one
``resampled_sums_with_groups`` pass, so 1000 resamples cost one pass over the data, not one per figure.

A "judge" here is any annotator that is not a person: an AI judge (kind "ai") or, once reward models
label pairs, a reward model (kind "model"). Each gets the same per-aspect entry, verdict included.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone
from scipy import sparse

from annotate.models import Annotator, Aspect, Campaign
from core.jobs import JobContext, job_create
from core.models import Job
from scoring import selectors
from scoring.jobs import REPORT, ReportJobParams
from scoring.models import Report
from scoring.report_params import ReportParameters
from scoring.stats import (
    DEFAULT_MARGIN,
    MIN_DECIDED_PER_ORDER,
    MIN_VERDICT_ITEMS,
    HumanRangeComparison,
    Interval,
    ItemStatistic,
    PairCounts,
    PositionBias,
    PositionCounts,
    agreement_from_counts,
    agreement_statistic,
    alpha_statistic,
    fleiss_statistic,
    group_pair_counts,
    human_range_comparison,
    intervals_from_sums,
    item_coincidences,
    item_comparison_columns,
    item_confusion,
    item_majority,
    kappa_statistic,
    kendall_tau,
    leaderboard_from_pair_sums,
    majority_pair_counts,
    percentile_interval,
    position_bias_from_intervals,
    position_counts,
    position_statistics,
    resampled_sums_with_groups,
    stack_statistic_columns,
    swap_pair_counts,
    verdict_from_intervals,
    vote_counts,
)
from scoring.stats import annotator_reliability as reliability_of

REPORT_SCHEMA = "visionprefer.agreement-report"
# 2: the human majority follows parameters.majority_rule ("strict" by default: split pairs left out);
# position bias, item-weighted agreement and the human-range verdict added.
REPORT_SCHEMA_VERSION = 2
CHOICE_LABELS = ["A", "tie", "B"]

# Swap consistency (with ties) below this gets a warning beside the judge's agreement figures: then more
# than one pair in four got a different answer once the sides were swapped, so which side a judge saw
# first moves its labels as much as the differences the report is there to show (MT-Bench, arXiv
# 2306.05685, counts GPT-4 at 0.65 and weaker judges far lower as judges with a position bias).
LOW_SWAP_CONSISTENCY = 0.75

Progress = Callable[[int, int], None]


def _number(value: Any) -> float | None:
    """A finite float, or None for NaN/inf (JSON has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def json_ready(value: Any) -> Any:
    """Recursively turn numpy scalars/arrays into Python and NaN into None."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _number(value)
    return value


@dataclass
class _Pending:
    """Figures waiting for the shared bootstrap: ItemStatistics by name and where to write each interval.

    ``annotator_positions`` are sparse per-annotator position columns with their targets; ``finishers``
    run once every interval is known (flags and verdicts are decided on the intervals).
    """

    statistics: dict[str, ItemStatistic] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    leaderboard_columns: list[np.ndarray] = field(default_factory=list)
    leaderboard_targets: list[dict[str, Any]] = field(default_factory=list)
    annotator_positions: list[tuple[sparse.csr_matrix, list[tuple[dict[str, Any], PositionCounts]]]] = field(
        default_factory=list
    )
    finishers: list[Callable[[dict[str, Interval]], None]] = field(default_factory=list)

    def figure(self, name: str, stat: ItemStatistic, **counts: Any) -> dict[str, Any]:
        """A figure dict to fill in later with estimate, low and high."""
        target: dict[str, Any] = {"estimate": None, "low": None, "high": None, **counts}
        self.statistics[name] = stat
        self.targets[name] = target
        return target


def _agreement(
    pending: _Pending, name: str, counts: PairCounts, *, item_weighted: bool = False
) -> dict[str, Any]:
    """MT-Bench agreement with and without ties; with ``item_weighted`` also the mean of per-pair rates."""
    summary = agreement_from_counts(counts)
    figures: dict[str, Any] = {}
    for ties, label, rate in (
        (True, "with_ties", summary.with_ties),
        (False, "without_ties", summary.without_ties),
    ):
        figures[label] = pending.figure(
            f"{name}.{label}",
            agreement_statistic(counts, ties=ties),
            n_items=rate.n_items,
            n_pairs=rate.n_pairs,
            n_agreeing=rate.n_agreeing,
        )
    if item_weighted:
        figures["item_weighted"] = {
            label: pending.figure(
                f"{name}.item_weighted.{label}",
                agreement_statistic(counts, ties=ties, item_mean=True),
                n_items=rate.n_items,
            )
            for ties, label, rate in (
                (True, "with_ties", summary.with_ties),
                (False, "without_ties", summary.without_ties),
            )
        }
    return figures


def _interval_entry(interval: Interval) -> dict[str, float]:
    """``{estimate, low, high}`` of an interval (NaN becomes null when the report is made JSON-ready)."""
    return {"estimate": interval.estimate, "low": interval.low, "high": interval.high}


def _position_entry(bias: PositionBias) -> dict[str, Any]:
    """A position-bias object of the report from the stats kit's result."""
    return {
        "share_first": _interval_entry(bias.share_first),
        "pooled_share_first": _interval_entry(bias.pooled_share_first),
        "flagged": bias.flagged,
        "enough_data": bias.enough_data,
        "n_items": bias.n_items,
        "n_decided_a_first": bias.n_decided_a_first,
        "n_decided_b_first": bias.n_decided_b_first,
        "n_first": bias.n_first,
        "n_ties": bias.n_ties,
        "min_decided": bias.min_decided,
    }


def _position(pending: _Pending, name: str, counts: PositionCounts) -> dict[str, Any]:
    """Position bias of one judge or group from per-item counts; filled in after the shared bootstrap."""
    statistics = position_statistics(counts)
    for key, stat in statistics.items():
        pending.statistics[f"{name}.{key}"] = stat
    target: dict[str, Any] = {}

    def finish(intervals: dict[str, Interval]) -> None:
        bias = position_bias_from_intervals(
            counts,
            share_first=intervals[f"{name}.share_first"],
            pooled=intervals[f"{name}.pooled"],
        )
        target.update(_position_entry(bias))

    pending.finishers.append(finish)
    return target


def _verdict(
    pending: _Pending, name: str, *, judge_pairs: PairCounts, human_pairs: PairCounts
) -> dict[str, Any]:
    """The human-range verdict with and without ties; decided after the shared (paired) bootstrap."""
    return {
        label: _verdict_target(
            pending,
            f"{name}.{label}",
            human_range_comparison(judge_pairs=judge_pairs, human_pairs=human_pairs, ties=ties),
        )
        for ties, label in ((True, "with_ties"), (False, "without_ties"))
    }


def _verdict_target(pending: _Pending, name: str, comparison: HumanRangeComparison) -> dict[str, Any]:
    """One verdict object, filled in once the intervals of the comparison's three statistics are known."""
    for key, stat in comparison.statistics.items():
        pending.statistics[f"{name}.{key}"] = stat
    target: dict[str, Any] = {}

    def finish(intervals: dict[str, Interval]) -> None:
        verdict = verdict_from_intervals(
            comparison,
            difference=intervals[f"{name}.difference"],
            judge_human=intervals[f"{name}.judge_human"],
            human_human=intervals[f"{name}.human_human"],
        )
        target.update(
            verdict=verdict.verdict,
            label=verdict.label,
            reason=verdict.reason,
            difference=_interval_entry(verdict.difference),
            judge_human=_interval_entry(verdict.judge_human),
            human_human=_interval_entry(verdict.human_human),
            n_items=verdict.n_items,
            n_judge_pairs=verdict.n_judge_pairs,
            n_human_pairs=verdict.n_human_pairs,
            margin=verdict.margin,
            min_items=verdict.min_items,
        )

    pending.finishers.append(finish)
    return target


def _annotator_positions(
    *,
    item: np.ndarray,
    judge: np.ndarray,
    choice: np.ndarray,
    a_first: np.ndarray,
    judges: list[int],
    n_items: int,
) -> tuple[sparse.csr_matrix, list[PositionCounts]]:
    """Each listed judge's position counts, and all of them as one sparse (n_items, 4 * judges) block.

    A judge's own counts are indexed by the pairs it judged (not by every pair), so memory follows its
    judgments; the sparse block places them at their pairs for the shared bootstrap.
    """
    order = np.argsort(judge, kind="stable")
    judge_sorted = judge[order]
    rows, cols, values = [], [], []
    counts_list = []
    for k, j in enumerate(judges):
        low, high = np.searchsorted(judge_sorted, [j, j + 1])
        mine = order[low:high]
        pairs, local = np.unique(item[mine], return_inverse=True)
        counts = position_counts(local, choice[mine], a_first=a_first[mine], n_items=pairs.size)
        counts_list.append(counts)
        columns = counts.columns()
        rows.append(np.repeat(pairs, columns.shape[1]))
        cols.append(np.tile(np.arange(columns.shape[1]) + columns.shape[1] * k, pairs.size))
        values.append(columns.ravel())
    width = 4 * len(judges)
    if not judges:
        return sparse.csr_matrix((n_items, 0)), []
    block = sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n_items, width)
    )
    block.eliminate_zeros()
    return block, counts_list


def _annotator_entry(annotator: Annotator) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": annotator.pk,
        "name": annotator.name,
        "kind": annotator.kind,
        "status": annotator.status,
    }
    judge = getattr(annotator, "ai_judge", None)  # the AI judge configuration pointing at this annotator
    if judge is not None:
        entry.update(provider=judge.provider, model=judge.model)
    return entry


def report_build(*, params: ReportParameters, progress: Progress | None = None) -> dict[str, Any]:
    """Compute the full agreement report of the given campaigns as a JSON-ready dict (schema version 1)."""
    started = time.perf_counter()
    found = Campaign.objects.in_bulk(params.campaign_ids)
    # In parameter order (report campaign first, then pooled ones), as docs/report-schema.md promises.
    campaigns = [found[pk] for pk in params.as_dict()["campaign_ids"] if pk in found]
    campaign = found[params.campaign_ids[0]]
    aspects = list(Aspect.objects.filter(campaigns__in=campaigns).distinct().order_by("order", "key"))
    if params.aspect_keys is not None:
        aspects = [a for a in aspects if a.key in params.aspect_keys]
    total_steps = 3 + len(aspects)
    step = 0

    def advance() -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(step, total_steps)

    flt = selectors.JudgmentFilter(
        campaign_ids=tuple(c.pk for c in campaigns),
        aspect_ids=tuple(a.pk for a in aspects),
        include_flagged=params.include_flagged,
        include_blocked=params.include_blocked,
        ai_judge_ids=params.ai_judge_ids,
        exclude_simulated=params.exclude_simulated,
    )
    data = selectors.judgment_arrays(flt=flt)
    pairs = selectors.pair_arrays(pair_ids=data.pair_ids, campaign_ids=flt.campaign_ids)
    annotators = selectors.annotators_by_id(data.annotator_ids.tolist())
    generators = selectors.generators_by_id(pairs.generator_ids.tolist())
    load_s = time.perf_counter() - started
    advance()

    n_items, n_judges, n_generators = data.n_items, data.annotator_ids.size, pairs.generator_ids.size
    judge_annotators = [annotators[int(i)] for i in data.annotator_ids]
    is_human = np.array([a.kind == Annotator.Kind.HUMAN for a in judge_annotators], dtype=bool)
    # AI judges first, then any other kind of non-human annotator (reward models), each by name.
    ai_judges = sorted(
        np.flatnonzero(~is_human).tolist(),
        key=lambda j: (judge_annotators[j].kind != Annotator.Kind.AI, judge_annotators[j].name),
    )
    aspect_index = {int(aspect_id): k for k, aspect_id in enumerate(data.aspect_ids)}
    # Rows grouped by aspect once, so each aspect is a slice rather than a mask over every judgment.
    by_aspect = np.argsort(data.aspect, kind="stable")
    bounds = np.searchsorted(data.aspect[by_aspect], np.arange(data.aspect_ids.size + 1))

    pending = _Pending()
    aspect_reports = []
    stats_started = time.perf_counter()
    for aspect in aspects:
        k = aspect_index.get(aspect.pk)
        rows = by_aspect[bounds[k] : bounds[k + 1]] if k is not None else np.zeros(0, dtype=np.int64)
        aspect_reports.append(
            _aspect_report(
                aspect=aspect,
                rows=rows,
                data=data,
                pairs=pairs,
                is_human=is_human,
                ai_judges=ai_judges,
                judge_annotators=judge_annotators,
                n_items=n_items,
                n_judges=n_judges,
                n_generators=n_generators,
                pending=pending,
                params=params,
            )
        )
        advance()
    statistics_s = time.perf_counter() - stats_started

    bootstrap_started = time.perf_counter()
    _bootstrap(pending, pairs=pairs, n_items=n_items, n_generators=n_generators, params=params)
    for aspect_report in aspect_reports:
        _rank_correlations(aspect_report)
    bootstrap_s = time.perf_counter() - bootstrap_started
    advance()

    human_ids = [a.pk for a in judge_annotators if a.kind == Annotator.Kind.HUMAN]
    report = {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
        "generated_at": timezone.now().isoformat(),
        "campaign": {"id": campaign.pk, "slug": campaign.slug, "name": campaign.name},
        "campaigns": [{"id": c.pk, "slug": c.slug, "name": c.name} for c in campaigns],
        "parameters": params.as_dict(),
        "totals": {
            "n_judgments": data.size,
            "n_pairs": n_items,
            "n_humans": len(human_ids),
            "n_ai_judges": len(ai_judges),
            "n_generators": n_generators,
        },
        "thresholds": {
            "low_swap_consistency": LOW_SWAP_CONSISTENCY,
            "position_min_decided_per_order": MIN_DECIDED_PER_ORDER,
            "verdict_margin": DEFAULT_MARGIN,
            "verdict_min_items": MIN_VERDICT_ITEMS,
        },
        "choice_labels": CHOICE_LABELS,
        "annotators": [_annotator_entry(a) for a in judge_annotators],
        "ai_judges": [_annotator_entry(judge_annotators[j]) for j in ai_judges],
        "generators": [
            {"id": int(g), "name": generators[int(g)].name, "kind": generators[int(g)].kind}
            for g in pairs.generator_ids
        ],
        "aspects": aspect_reports,
        "timings": {
            "load_s": round(load_s, 3),
            "statistics_s": round(statistics_s, 3),
            "bootstrap_s": round(bootstrap_s, 3),
            "total_s": round(time.perf_counter() - started, 3),
        },
    }
    advance()
    return json_ready(report)


def _aspect_report(
    *,
    aspect: Aspect,
    rows: np.ndarray,
    data: selectors.JudgmentArrays,
    pairs: selectors.PairArrays,
    is_human: np.ndarray,
    ai_judges: list[int],
    judge_annotators: list[Annotator],
    n_items: int,
    n_judges: int,
    n_generators: int,
    pending: _Pending,
    params: ReportParameters,
) -> dict[str, Any]:
    """One aspect's figures; intervals, flags and verdicts are filled in by the shared bootstrap afterwards."""
    name = aspect.key
    # Position bias reads every judgment, both trials: each has its own presented order.
    all_item, all_judge = data.item[rows], data.judge[rows]
    all_choice, all_a_first = data.choice[rows].astype(np.int64), data.a_first[rows]
    trial, seconds = data.trial[rows], data.seconds[rows]
    first = trial == 1
    item, judge, choice, seconds, item_2, judge_2, choice_2 = (
        all_item[first],
        all_judge[first],
        all_choice[first],
        seconds[first],
        all_item[~first],
        all_judge[~first],
        all_choice[~first],
    )
    human = is_human[judge]
    human_counts = vote_counts(item[human], choice[human], n_items=n_items)
    majority_info = item_majority(human_counts, rule=params.majority_rule)
    majority = majority_info.choice
    votes_per_pair = human_counts.sum(axis=1)
    judged = votes_per_pair > 0

    human_pairs = group_pair_counts(item, choice, n_items=n_items, group1=human)
    coincidences = item_coincidences(human_counts)
    all_human = is_human[all_judge]
    human_report: dict[str, Any] = {
        "n_judgments": int(human.sum()),
        "n_pairs": int(judged.sum()),
        "votes_per_pair": {
            "min": int(votes_per_pair[judged].min()) if judged.any() else 0,
            "max": int(votes_per_pair[judged].max()) if judged.any() else 0,
            "mean": float(votes_per_pair[judged].mean()) if judged.any() else None,
        },
        "majority": {
            "rule": majority_info.rule,
            "n_voted": majority_info.n_voted,
            "n_split": majority_info.n_split,
            "n_left_out": majority_info.n_left_out,
            "n_decided": majority_info.n_decided,
        },
        "agreement": _agreement(pending, f"{name}.human", human_pairs, item_weighted=True),
        "alpha_nominal": pending.figure(
            f"{name}.alpha_nominal",
            alpha_statistic(coincidences, level="nominal"),
            n_pairs=int((votes_per_pair >= 2).sum()),
        ),
        "alpha_ordinal": pending.figure(
            f"{name}.alpha_ordinal",
            alpha_statistic(coincidences, level="ordinal"),
            n_pairs=int((votes_per_pair >= 2).sum()),
        ),
        "position_bias": _position(
            pending,
            f"{name}.human.position",
            position_counts(
                all_item[all_human], all_choice[all_human], a_first=all_a_first[all_human], n_items=n_items
            ),
        ),
    }
    try:
        fleiss = fleiss_statistic(human_counts)
    except ValueError as exc:
        human_report["fleiss_kappa"] = None
        human_report["fleiss_kappa_note"] = str(exc)
    else:
        human_report["fleiss_kappa"] = pending.figure(
            f"{name}.fleiss",
            fleiss,
            n_pairs=int(judged.sum()),
            votes_per_pair=int(votes_per_pair[judged].max()),
        )
        human_report["fleiss_kappa_note"] = ""

    # Gold pairs (often an image against a corrupted copy of itself) test judges; they say nothing about
    # how generators compare, so leaderboards leave them out.
    ranked = ~pairs.is_gold[item]
    human_item_gen = item_comparison_columns(
        pairs.gen_a, pairs.gen_b, item[human & ranked], choice[human & ranked], n_generators=n_generators
    )[0]
    leaderboards: dict[str, Any] = {"human": _leaderboard_target(pending, human_item_gen), "ai": []}

    ai_reports = []
    ai_choice_per_item: dict[int, np.ndarray] = {}
    for j in ai_judges:
        mine = judge == j
        annotator = judge_annotators[j]
        per_item = np.full(n_items, -1, dtype=np.int64)
        per_item[item[mine]] = choice[mine]
        ai_choice_per_item[j] = per_item
        entry: dict[str, Any] = {
            "judge": {"id": annotator.pk, "name": annotator.name, "kind": annotator.kind},
            "n_judgments": int(mine.sum()),
        }
        prefix = f"{name}.ai{annotator.pk}"
        judge_pairs = group_pair_counts(item, choice, n_items=n_items, group1=mine, group2=human)
        entry["agreement_with_humans"] = _agreement(
            pending, f"{prefix}.humans", judge_pairs, item_weighted=True
        )
        entry["agreement_with_majority"] = _agreement(
            pending, f"{prefix}.majority", majority_pair_counts(item[mine], choice[mine], majority=majority)
        )
        confusion = item_confusion(item[mine], choice[mine], majority=majority)
        table = confusion.sum(axis=0)
        entry["kappa"] = pending.figure(f"{prefix}.kappa", kappa_statistic(confusion), n=int(table.sum()))
        entry["kappa_linear"] = pending.figure(
            f"{prefix}.kappa_linear", kappa_statistic(confusion, weights="linear"), n=int(table.sum())
        )
        entry["confusion"] = {
            "rows": "ai",
            "columns": "human_majority",
            "labels": CHOICE_LABELS,
            "counts": table,
        }

        second = judge_2 == j
        entry["low_swap_consistency"] = False
        if second.any():
            second_per_item = np.full(n_items, -1, dtype=np.int64)
            second_per_item[item_2[second]] = choice_2[second]
            both = np.flatnonzero((per_item >= 0) & (second_per_item >= 0))
            swap = swap_pair_counts(both, per_item[both], second_per_item[both], n_items=n_items)
            entry["swap_consistency"] = _agreement(pending, f"{prefix}.swap", swap)
            consistent = agreement_from_counts(swap).with_ties.rate
            entry["low_swap_consistency"] = bool(consistent < LOW_SWAP_CONSISTENCY)
        else:
            entry["swap_consistency"] = None
        every_trial = all_judge == j
        entry["position_bias"] = _position(
            pending,
            f"{prefix}.position",
            position_counts(
                all_item[every_trial],
                all_choice[every_trial],
                a_first=all_a_first[every_trial],
                n_items=n_items,
            ),
        )
        entry["verdict"] = _verdict(
            pending, f"{prefix}.verdict", judge_pairs=judge_pairs, human_pairs=human_pairs
        )
        ai_reports.append(entry)

        ai_item_gen = item_comparison_columns(
            pairs.gen_a, pairs.gen_b, item[mine & ranked], choice[mine & ranked], n_generators=n_generators
        )[0]
        board = _leaderboard_target(pending, ai_item_gen)
        board["judge"] = {"id": annotator.pk, "name": annotator.name, "kind": annotator.kind}
        leaderboards["ai"].append(board)

    gold = pairs.gold.get(name)
    reliability = reliability_of(
        item[human],
        judge[human],
        choice[human],
        n_items=n_items,
        n_judges=n_judges,
        gold=gold,
        seconds=seconds[human],
        rule=params.majority_rule,
    )
    human_choice_judge = judge[human]
    annotator_rows = []
    ai_agreement: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for a, per_item in ai_choice_per_item.items():
        ai_vote = per_item[item[human]]
        voted = ai_vote >= 0
        ai_agreement[a] = (
            np.bincount(human_choice_judge[voted], minlength=n_judges),
            np.bincount(human_choice_judge[voted & (choice[human] == ai_vote)], minlength=n_judges),
        )
    listed = np.flatnonzero(reliability.n_judgments > 0).tolist()
    block, position_of = _annotator_positions(
        item=all_item[all_human],
        judge=all_judge[all_human],
        choice=all_choice[all_human],
        a_first=all_a_first[all_human],
        judges=listed,
        n_items=n_items,
    )
    position_targets = []
    for j, counts in zip(listed, position_of, strict=True):
        annotator = judge_annotators[j]
        position: dict[str, Any] = {}
        position_targets.append((position, counts))
        annotator_rows.append(
            {
                "annotator": {"id": annotator.pk, "name": annotator.name, "status": annotator.status},
                "n_judgments": reliability.n_judgments[j],
                "n_compared": reliability.n_compared[j],
                "n_left_out": reliability.n_left_out[j],
                "loo_majority_agreement": reliability.majority_agreement[j],
                "n_gold": reliability.n_gold[j],
                "gold_accuracy": reliability.gold_accuracy[j],
                "median_seconds": reliability.median_seconds[j],
                "ai_agreement": [
                    {
                        "judge_id": judge_annotators[a].pk,
                        "n_compared": compared[j],
                        "agreement": (agreeing[j] / compared[j]) if compared[j] else None,
                    }
                    for a, (compared, agreeing) in ai_agreement.items()
                ],
                "position_bias": position,
            }
        )
    pending.annotator_positions.append((block, position_targets))
    annotator_rows.sort(key=lambda row: row["annotator"]["name"])

    return {
        "key": aspect.key,
        "name": aspect.name,
        "question": aspect.question,
        "human": human_report,
        "ai": ai_reports,
        "annotators": annotator_rows,
        "leaderboards": leaderboards,
    }


def _leaderboard_target(pending: _Pending, columns: np.ndarray) -> dict[str, Any]:
    target: dict[str, Any] = {"generators": []}
    pending.leaderboard_columns.append(columns)
    pending.leaderboard_targets.append(target)
    return target


def _bootstrap(
    pending: _Pending,
    *,
    pairs: selectors.PairArrays,
    n_items: int,
    n_generators: int,
    params: ReportParameters,
) -> None:
    """Fill every figure's interval and every leaderboard from one shared set of pair resamples."""
    columns, starts = stack_statistic_columns(pending.statistics)
    if columns.shape[0] != n_items:
        columns = np.zeros((n_items, 0))
    board_columns = (
        np.hstack(pending.leaderboard_columns) if pending.leaderboard_columns else np.zeros((n_items, 0))
    )
    g = max(n_generators, 1)
    pair_group = np.minimum(pairs.gen_a, pairs.gen_b) * g + np.maximum(pairs.gen_a, pairs.gen_b)
    # Compact the generator-pair groups to the ones present, so the grouped sums stay small.
    present, group = selectors.dense_index(pair_group)
    blocks = [block for block, _ in pending.annotator_positions]
    annotator_columns = sparse.hstack(blocks, format="csr") if blocks else sparse.csr_matrix((n_items, 0))
    sums, group_sums = resampled_sums_with_groups(
        columns,
        board_columns,
        group=group,
        n_groups=present.size,
        n_resamples=params.n_resamples,
        seed=params.seed,
        sparse_columns=annotator_columns,
    )
    intervals = intervals_from_sums(pending.statistics, sums, starts, level=params.level)
    for name, interval in intervals.items():
        if name in pending.targets:
            pending.targets[name].update(estimate=interval.estimate, low=interval.low, high=interval.high)
    for finish in pending.finishers:
        finish(intervals)

    # Per-annotator position shares: four sparse columns each, after the dense columns. The shares are
    # functions of (..., 4) sums, so every annotator of a block is evaluated and bounded at once.
    offset = columns.shape[1]
    for block, targets in pending.annotator_positions:
        if not targets:
            continue
        resampled = sums[:, offset : offset + block.shape[1]].reshape(params.n_resamples, len(targets), 4)
        offset += block.shape[1]
        bounds = {}
        for key, stat in position_statistics(targets[0][1]).items():
            bounds[key] = percentile_interval(stat.from_sums(resampled), level=params.level)
        for k, (target, counts) in enumerate(targets):
            shares = {
                key: Interval(stat.estimate(), float(bounds[key][0][k]), float(bounds[key][1][k]))
                for key, stat in position_statistics(counts).items()
            }
            bias = position_bias_from_intervals(
                counts, share_first=shares["share_first"], pooled=shares["pooled"]
            )
            target.update(_position_entry(bias))

    observed_groups = np.zeros((present.size, board_columns.shape[1]))
    np.add.at(observed_groups, group, board_columns)
    for k, target in enumerate(pending.leaderboard_targets):
        observed = np.zeros((g * g, 2))
        observed[present] = observed_groups[:, 2 * k : 2 * k + 2]
        resampled = np.zeros((params.n_resamples, g * g, 2))
        resampled[:, present] = group_sums[:, :, 2 * k : 2 * k + 2]
        board = leaderboard_from_pair_sums(observed, resampled, n_generators=g, level=params.level)
        played = board.n_comparisons > 0
        order = np.argsort(-np.where(played, board.strengths, -np.inf), kind="stable")
        rank = 0
        for index in order:
            if not played[index]:
                continue
            rank += 1
            target["generators"].append(
                {
                    "generator_id": int(pairs.generator_ids[index]),
                    "rank": rank,
                    "strength": board.strengths[index],
                    "low": board.low[index],
                    "high": board.high[index],
                    "n_comparisons": board.n_comparisons[index],
                }
            )


def _rank_correlations(aspect_report: dict[str, Any]) -> None:
    """Kendall's tau between the human leaderboard and each AI judge's, over generators in both."""
    human = {
        row["generator_id"]: row["strength"] for row in aspect_report["leaderboards"]["human"]["generators"]
    }
    for board in aspect_report["leaderboards"]["ai"]:
        ai = {row["generator_id"]: row["strength"] for row in board["generators"]}
        common = sorted(set(human) & set(ai))
        board["n_common_generators"] = len(common)
        board["kendall_tau_vs_human"] = (
            kendall_tau([human[g] for g in common], [ai[g] for g in common]) if len(common) >= 2 else None
        )


# ---- cache -------------------------------------------------------------------------------------------


def report_compute(
    *, campaign: Campaign, params: ReportParameters, job: Any = None, progress: Progress | None = None
) -> Report:
    """Build the report on current data and store it as the newest cache entry for its parameters."""
    data = report_build(params=params, progress=progress)
    with transaction.atomic():
        return Report.objects.create(
            campaign=campaign,
            params_hash=params.key,
            parameters=params.as_dict(),
            schema_version=REPORT_SCHEMA_VERSION,
            data=data,
            n_judgments=data["totals"]["n_judgments"],
            job=job,
        )


def report_job_running(*, campaign: Campaign, params: ReportParameters) -> Job | None:
    """The unfinished job computing this campaign's report for these parameters, if any."""
    jobs = Job.objects.filter(kind=REPORT, campaign=campaign, params__key=params.key)
    return jobs.exclude(status__in=Job.FINISHED).order_by("-created_at").first()


def report_job_start(*, campaign: Campaign, params: ReportParameters, user: Any = None) -> Job:
    """The unfinished report job for these parameters, or a new one."""
    return report_job_running(campaign=campaign, params=params) or job_create(
        kind=REPORT,
        params=ReportJobParams(report=params, key=params.key),
        title=f"Agreement report: {campaign.name}",
        campaign=campaign,
        created_by=user,
    )


def report_job(ctx: JobContext) -> dict[str, Any]:
    """Job handler (ReportJobParams): compute and cache one campaign report, with progress."""
    job_params: ReportJobParams = ctx.params
    params = job_params.report
    campaign = Campaign.objects.get(pk=params.campaign_ids[0])
    ctx.log(f"computing the agreement report of {campaign.slug} ({params.n_resamples} resamples)")

    def progress(done: int, total: int) -> None:
        ctx.check_cancelled()
        ctx.set_progress(done, total)

    report = report_compute(
        campaign=campaign, params=params, job=Job.objects.get(pk=ctx.job_id), progress=progress
    )
    ctx.log(f"report {report.pk}: {report.n_judgments} judgments in {report.data['timings']['total_s']} s")
    return {"report_id": report.pk, "n_judgments": report.n_judgments}
