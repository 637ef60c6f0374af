"""Report figures against references that share no code with scoring.stats.

The other report tests compare the report with the package's own functions (the same code twice). Here the
intervals come from a brute-force bootstrap that copies the judgments of each drawn pair and recounts them
one vote pair at a time, and the Bradley–Terry strengths from maximising the likelihood over single votes
with scipy's general-purpose optimiser instead of the package's batched Newton on summed matrices. A wrong
interval level, a wrong tie weight or a wrong resampling unit fails here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest
from django.db import transaction
from scipy.optimize import minimize

from annotate.models import Judgment
from scoring.report_params import ReportParameters
from scoring.services.reports import report_build
from tests.scoring.test_report import CODES, build_campaign, figure

RESAMPLES = 200
SEED = 3
RIDGE = 0.01  # the documented prior of the leaderboard: ridge / 2 * sum(s ** 2)


@dataclass(frozen=True)
class Vote:
    item: int  # the pair's index among the pairs with judgments of the aspect
    human: bool
    choice: int  # 0 A, 1 tie, 2 B
    gen_a: int
    gen_b: int
    gold: bool


@dataclass(frozen=True)
class SmallReport:
    report: dict
    aspect_key: str
    votes: list[Vote]
    n_items: int
    gen_ids: list[int]


@pytest.fixture(scope="module")
def small_report(django_db_setup, django_db_blocker) -> SmallReport:
    """One small campaign and its report, built once for the module inside a transaction rolled back at once:
    the tests get plain data and need no database."""
    from pipeline.services.aspects import aspects_ensure_defaults

    with django_db_blocker.unblock(), transaction.atomic():
        campaign, _humans, _judges, used = build_campaign(aspects_ensure_defaults())
        report = report_build(
            params=ReportParameters(campaign_ids=(campaign.pk,), n_resamples=RESAMPLES, seed=SEED)
        )
        aspect = used[0]
        rows = list(
            Judgment.objects.filter(pair__campaign=campaign, aspect=aspect, trial=1).select_related(
                "annotator", "pair__image_a", "pair__image_b"
            )
        )
        rows = [r for r in rows if r.annotator.kind == "ai" or r.annotator.status == "active"]
        pair_ids = sorted({r.pair_id for r in rows})
        gen_ids = sorted(
            {g for r in rows for g in (r.pair.image_a.generator_id, r.pair.image_b.generator_id)}
        )
        votes = [
            Vote(
                item=pair_ids.index(r.pair_id),
                human=r.annotator.kind == "human",
                choice=CODES[r.choice],
                gen_a=gen_ids.index(r.pair.image_a.generator_id),
                gen_b=gen_ids.index(r.pair.image_b.generator_id),
                gold=r.pair.is_gold,
            )
            for r in rows
        ]
        transaction.set_rollback(True)
    return SmallReport(report, aspect.key, votes, len(pair_ids), gen_ids)


def draws(n_items: int) -> np.ndarray:
    """The pairs each resample draws: B rows of n_items indices, from the report's seed."""
    return np.random.default_rng(SEED).integers(0, n_items, size=(RESAMPLES, n_items))


def human_agreement(votes_by_item: list[list[int]]) -> float:
    """MT-Bench agreement with ties: over every two human votes on the same pair, the share that agree."""
    agree = total = 0
    for choices in votes_by_item:
        for first, second in itertools.combinations(choices, 2):
            total += 1
            agree += first == second
    return agree / total


def test_human_agreement_interval_equals_a_brute_force_bootstrap(small_report):
    by_item: list[list[int]] = [[] for _ in range(small_report.n_items)]
    for vote in small_report.votes:
        if vote.human:
            by_item[vote.item].append(vote.choice)
    estimates = [human_agreement([by_item[k] for k in drawn]) for drawn in draws(small_report.n_items)]
    low, high = np.quantile(estimates, [0.025, 0.975])  # a 95% interval
    got = figure(small_report.report, small_report.aspect_key)["human"]["agreement"]["with_ties"]
    assert got["estimate"] == pytest.approx(human_agreement(by_item))
    assert (got["low"], got["high"]) == pytest.approx((low, high), abs=1e-12)
    assert got["low"] < got["high"]


def fit_by_votes(votes: list[Vote], n_generators: int) -> np.ndarray:
    """Bradley–Terry by L-BFGS on the per-vote log-likelihood (a tie is half a win each way) plus the ridge."""

    def loss(s: np.ndarray) -> float:
        total = RIDGE / 2 * float(s @ s)
        for vote in votes:
            score_a = {0: 1.0, 1: 0.5, 2: 0.0}[vote.choice]
            diff = s[vote.gen_a] - s[vote.gen_b]
            total += score_a * np.logaddexp(0, -diff) + (1 - score_a) * np.logaddexp(0, diff)
        return total

    fitted = minimize(loss, np.zeros(n_generators), method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-10})
    return fitted.x - fitted.x.mean()


def test_bradley_terry_strengths_and_intervals_equal_a_per_vote_likelihood_fit(small_report):
    ranked = [v for v in small_report.votes if v.human and not v.gold and v.gen_a != v.gen_b]
    g = len(small_report.gen_ids)
    strengths = fit_by_votes(ranked, g)
    by_item: list[list[Vote]] = [[] for _ in range(small_report.n_items)]
    for vote in ranked:
        by_item[vote.item].append(vote)
    fits = np.array(
        [fit_by_votes([v for k in drawn for v in by_item[k]], g) for drawn in draws(small_report.n_items)]
    )
    low, high = np.quantile(fits, [0.025, 0.975], axis=0)
    rows = figure(small_report.report, small_report.aspect_key)["leaderboards"]["human"]["generators"]
    assert len(rows) == g
    for row in rows:
        k = small_report.gen_ids.index(row["generator_id"])
        assert row["strength"] == pytest.approx(strengths[k], abs=1e-5)
        assert (row["low"], row["high"]) == pytest.approx((low[k], high[k]), abs=1e-4)
        assert row["n_comparisons"] == sum(k in (v.gen_a, v.gen_b) for v in ranked)
    # Ranked by strength, strongest first.
    assert [r["strength"] for r in rows] == sorted((r["strength"] for r in rows), reverse=True)
