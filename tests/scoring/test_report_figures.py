"""Every figure of a report recomputed independently from ORM rows: brute-force counting for MT-Bench
agreement, majority and swap consistency; scikit-learn for kappa (plain and linear) and confusion; scipy
for Kendall's tau; statsmodels for Fleiss' kappa; Bradley–Terry per judge. Also the campaigns filter
(pooling campaigns) in the report and on the page, and the schema document naming every field."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.urls import reverse
from scipy.stats import kendalltau
from sklearn.metrics import cohen_kappa_score, confusion_matrix
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from annotate.models import Judgment
from core.models import Job
from scoring.models import Report
from scoring.report_params import ReportParameters
from scoring.services.reports import report_build, report_compute
from scoring.stats import bradley_terry
from tests.factories import AdminFactory, AIAnnotatorFactory
from tests.scoring.test_report import build_campaign, figure

pytestmark = pytest.mark.django_db
CODES = {"A": 0, "tie": 1, "B": 2}
SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "report-schema.md"


def is_split(votes: list[str]) -> bool:
    """Votes whose top count is shared by two or three choices: no single most-voted choice."""
    ranked = Counter(votes).most_common()
    return len(ranked) > 1 and ranked[0][1] == ranked[1][1]


def plurality(votes: list[str], rule: str) -> str | None:
    """The documented majority rules: the most common vote; a shared top count is left out (None) under
    "strict" and a tie under "tie"; no votes, no majority."""
    if not votes:
        return None
    if is_split(votes):
        return None if rule == "strict" else "tie"
    return Counter(votes).most_common(1)[0][0]


def rate(agreeing: int, compared: int) -> float | None:
    return agreeing / compared if compared else None


def votes_by_pair(rows, *, human: bool) -> dict[int, list[tuple[int, str]]]:
    out: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for r in rows:
        if (r.annotator.kind == "human") == human:
            out[r.pair_id].append((r.annotator_id, r.choice))
    return out


def trial_rows(campaign, aspect, *, trial: int = 1, flagged: bool = False):
    rows = Judgment.objects.filter(pair__campaign=campaign, aspect=aspect, trial=trial).select_related(
        "annotator", "pair__image_a", "pair__image_b"
    )
    return [r for r in rows if r.annotator.kind == "ai" or flagged or r.annotator.status == "active"]


def strengths_of(selected, gen_ids: list[int]) -> dict[int, float]:
    """Bradley–Terry strengths of the generators from the given judgments alone."""
    pairs = [(r.pair.image_a.generator_id, r.pair.image_b.generator_id, CODES[r.choice]) for r in selected]
    a = np.array([gen_ids.index(p[0]) for p in pairs])
    b = np.array([gen_ids.index(p[1]) for p in pairs])
    fitted = bradley_terry(a, b, np.array([p[2] for p in pairs]), n_generators=len(gen_ids))
    return {g: fitted[k] for k, g in enumerate(gen_ids)}


def assert_agreement(got: dict[str, Any], pairs_of_votes: list[tuple[str, str]]) -> None:
    """`got` is a {with_ties, without_ties} entry; pairs_of_votes every compared pair of votes."""
    same = sum(a == b for a, b in pairs_of_votes)
    no_ties = [(a, b) for a, b in pairs_of_votes if a != "tie" and b != "tie"]
    assert got["with_ties"]["n_pairs"] == len(pairs_of_votes)
    assert got["with_ties"]["estimate"] == pytest.approx(rate(same, len(pairs_of_votes)))
    assert got["without_ties"]["n_pairs"] == len(no_ties)
    assert got["without_ties"]["estimate"] == pytest.approx(
        rate(sum(a == b for a, b in no_ties), len(no_ties))
    )
    for entry in (got["with_ties"], got["without_ties"]):
        if entry["estimate"] is not None:
            assert entry["low"] <= entry["estimate"] <= entry["high"]


def item_weighted(pairs_by_item: list[list[tuple[str, str]]], *, ties: bool) -> float | None:
    """Mean over pairs (images) of the share of agreeing vote pairs, each pair with a vote pair once."""
    rates = []
    for vote_pairs in pairs_by_item:
        kept = [(a, b) for a, b in vote_pairs if ties or (a != "tie" and b != "tie")]
        if kept:
            rates.append(sum(a == b for a, b in kept) / len(kept))
    return float(np.mean(rates)) if rates else None


@pytest.mark.parametrize("rule", ["strict", "tie"])
def test_every_figure_equals_brute_force_and_reference_libraries(aspects, rule):
    campaign, humans, judges, used = build_campaign(aspects, n_pairs=24, seed=11)
    report = report_build(
        params=ReportParameters(campaign_ids=(campaign.pk,), n_resamples=100, seed=1, majority_rule=rule)
    )
    assert report["parameters"]["majority_rule"] == rule
    n_split_seen = 0
    for aspect in used:
        got = figure(report, aspect.key)
        rows = trial_rows(campaign, aspect)
        human_votes = votes_by_pair(rows, human=True)
        majority = {p: plurality([c for _, c in v], rule) for p, v in human_votes.items()}
        split = sum(is_split([c for _, c in v]) for v in human_votes.values())
        n_split_seen += split
        assert got["human"]["majority"] == {
            "rule": rule,
            "n_voted": len(human_votes),
            "n_split": split,
            "n_left_out": split if rule == "strict" else 0,
            "n_decided": len(human_votes) - (split if rule == "strict" else 0),
        }

        # Human–human: every pair of distinct humans on the same pair, pooled over pairs.
        hh = [
            (v[i][1], v[k][1])
            for v in human_votes.values()
            for i in range(len(v))
            for k in range(i + 1, len(v))
        ]
        assert_agreement(got["human"]["agreement"], hh)
        hh_by_pair = [
            [(v[i][1], v[k][1]) for i in range(len(v)) for k in range(i + 1, len(v))]
            for v in human_votes.values()
        ]
        for ties, label in ((True, "with_ties"), (False, "without_ties")):
            assert got["human"]["agreement"]["item_weighted"][label]["estimate"] == pytest.approx(
                item_weighted(hh_by_pair, ties=ties)
            )

        entries = {e["judge"]["id"]: e for e in got["ai"]}
        for judge in judges:
            mine = {r.pair_id: r.choice for r in rows if r.annotator_id == judge.pk}
            entry = entries[judge.pk]
            assert entry["n_judgments"] == len(mine)
            # AI vs each human on the same pair; AI vs the human majority.
            assert_agreement(
                entry["agreement_with_humans"],
                [(c, h) for p, c in mine.items() for _, h in human_votes.get(p, [])],
            )
            for ties, label in ((True, "with_ties"), (False, "without_ties")):
                assert entry["agreement_with_humans"]["item_weighted"][label]["estimate"] == pytest.approx(
                    item_weighted(
                        [[(c, h) for _, h in human_votes.get(p, [])] for p, c in mine.items()], ties=ties
                    )
                )
            with_majority = [(c, majority[p]) for p, c in mine.items() if majority.get(p)]
            assert_agreement(entry["agreement_with_majority"], with_majority)
            ai = [CODES[a] for a, _ in with_majority]
            maj = [CODES[m] for _, m in with_majority]
            assert entry["kappa"]["estimate"] == pytest.approx(cohen_kappa_score(ai, maj, labels=[0, 1, 2]))
            assert entry["kappa_linear"]["estimate"] == pytest.approx(
                cohen_kappa_score(ai, maj, labels=[0, 1, 2], weights="linear")
            )
            assert entry["kappa"]["n"] == len(ai)
            assert entry["confusion"]["labels"] == ["A", "tie", "B"]
            assert entry["confusion"]["counts"] == confusion_matrix(ai, maj, labels=[0, 1, 2]).tolist()

            # Swap consistency: trial 1 against trial 2 of the same pair.
            second = {
                r.pair_id: r.choice
                for r in Judgment.objects.filter(
                    annotator=judge, aspect=aspect, trial=2, pair__campaign=campaign
                )
            }
            if second:
                assert_agreement(
                    entry["swap_consistency"], [(mine[p], c) for p, c in second.items() if p in mine]
                )
            else:
                assert entry["swap_consistency"] is None

        # Per-annotator reliability: leave-one-out majority, agreement with each AI judge.
        ai_votes = votes_by_pair(rows, human=False)
        for row in got["annotators"]:
            me = row["annotator"]["id"]
            compared = agreeing = left_out = 0
            with_ai: Counter[tuple[int, str]] = Counter()
            for pair_id, votes in human_votes.items():
                own = [c for a, c in votes if a == me]
                if not own:
                    continue
                other_votes = [c for a, c in votes if a != me]
                others = plurality(other_votes, rule)
                left_out += bool(other_votes) and others is None
                if others is not None:
                    compared += 1
                    agreeing += own[0] == others
                for judge_id, c in ai_votes.get(pair_id, []):
                    with_ai[(judge_id, "n")] += 1
                    with_ai[(judge_id, "same")] += own[0] == c
            assert row["n_compared"] == compared and row["n_left_out"] == left_out
            assert row["loo_majority_agreement"] == pytest.approx(rate(agreeing, compared))
            for cell in row["ai_agreement"]:
                assert cell["n_compared"] == with_ai[(cell["judge_id"], "n")]
                assert cell["agreement"] == pytest.approx(
                    rate(with_ai[(cell["judge_id"], "same")], with_ai[(cell["judge_id"], "n")])
                )

        # Leaderboards: humans and each AI judge separately, Kendall's tau between them from scipy.
        boards = got["leaderboards"]
        gen_ids = sorted({g["id"] for g in report["generators"]})

        # Gold pairs check judges, not generators: leaderboards leave them out.
        ranked = [r for r in rows if not r.pair.is_gold]
        human_strength = strengths_of([r for r in ranked if r.annotator.kind == "human"], gen_ids)
        for board in boards["ai"]:
            judge_rows = [r for r in ranked if r.annotator_id == board["judge"]["id"]]
            expected = strengths_of(judge_rows, gen_ids)
            for g in board["generators"]:
                assert g["strength"] == pytest.approx(expected[g["generator_id"]], abs=1e-9)
                assert g["low"] <= g["strength"] <= g["high"]
                assert g["n_comparisons"] == sum(
                    g["generator_id"] in (r.pair.image_a.generator_id, r.pair.image_b.generator_id)
                    for r in judge_rows
                )
            common = [g["generator_id"] for g in board["generators"]]
            assert board["n_common_generators"] == len(common) == 3
            tau = kendalltau([human_strength[g] for g in common], [expected[g] for g in common]).statistic
            assert board["kendall_tau_vs_human"] == pytest.approx(tau)
        assert [r["strength"] for r in boards["human"]["generators"]] == pytest.approx(
            sorted(human_strength.values(), reverse=True), abs=1e-9
        )
    # The data has split pairs, so the two rules give different figures and both were checked.
    assert n_split_seen > 0


def test_fleiss_kappa_on_a_complete_design_equals_statsmodels(aspects):
    campaign, humans, judges, used = build_campaign(aspects, n_pairs=20, seed=2)
    # With the flagged worker counted every pair has exactly three human votes: a complete design.
    report = report_build(
        params=ReportParameters(campaign_ids=(campaign.pk,), include_flagged=True, n_resamples=50)
    )
    for aspect in used:
        rows = [r for r in trial_rows(campaign, aspect, flagged=True) if r.annotator.kind == "human"]
        by_pair: dict[int, list[int]] = defaultdict(list)
        for r in rows:
            by_pair[r.pair_id].append(CODES[r.choice])
        table, _ = aggregate_raters(np.array([by_pair[p] for p in sorted(by_pair)]), n_cat=3)
        got = figure(report, aspect.key)["human"]
        assert got["fleiss_kappa"]["estimate"] == pytest.approx(fleiss_kappa(table, method="fleiss"))
        assert got["fleiss_kappa"]["votes_per_pair"] == 3 and got["fleiss_kappa_note"] == ""
    # Without the flagged worker some pairs have two votes: no Fleiss' kappa, and the report says why.
    default = report_build(params=ReportParameters(campaign_ids=(campaign.pk,), n_resamples=20))
    human = figure(default, used[0].key)["human"]
    assert human["fleiss_kappa"] is None and human["fleiss_kappa_note"]


def test_pooling_campaigns_from_the_filter_and_the_page(aspects, client):
    first, _, judges_1, used = build_campaign(aspects, n_pairs=6, seed=3)
    second, _, _, _ = build_campaign(aspects, n_pairs=5, seed=4)
    second_judge = AIAnnotatorFactory()
    pair = second.pairs.first()
    Judgment.objects.create(pair=pair, annotator=second_judge, aspect=used[0], choice="A")

    alone = report_build(params=ReportParameters(campaign_ids=(first.pk,), n_resamples=20))
    pooled_params = ReportParameters(campaign_ids=(first.pk, second.pk), n_resamples=20)
    pooled = report_build(params=pooled_params)
    assert [c["slug"] for c in pooled["campaigns"]] == [first.slug, second.slug]
    assert pooled["totals"]["n_pairs"] == first.pairs.count() + second.pairs.count()
    second_only = report_build(params=ReportParameters(campaign_ids=(second.pk,), n_resamples=20))
    assert (
        pooled["totals"]["n_judgments"]
        == alone["totals"]["n_judgments"] + second_only["totals"]["n_judgments"]
    )

    client.force_login(AdminFactory())
    page = client.get(reverse("scoring:report", args=[first.slug])).content.decode()
    assert "Also include campaigns" in page and f'value="{second.slug}"' in page
    # A judge who labelled only the pooled campaign can be chosen once that campaign is included.
    assert second_judge.name not in page
    # What the form sends: the judges it showed (ticked) and the campaign picked; the pooled campaign's
    # judge was not on the form, so it is included.
    shown = "".join(f"&ai={j.pk}&ai_shown={j.pk}" for j in judges_1)
    query = f"?filtered=1{shown}&campaign={second.slug}"
    report_compute(campaign=first, params=ReportParameters(campaign_ids=(first.pk, second.pk)))
    pooled_page = client.get(reverse("scoring:report", args=[first.slug]) + query).content.decode()
    assert re.search(rf'<option value="{second.slug}"\s+selected', pooled_page)
    assert second_judge.name in pooled_page and "No report for these filters yet" not in pooled_page
    data = client.get(reverse("scoring:report-json", args=[first.slug]) + query).json()
    assert data["parameters"]["campaign_ids"] == [first.pk, second.pk]
    assert data["parameters"]["ai_judge_ids"] is None
    assert second_judge.name in {j["name"] for j in data["ai_judges"]}
    # Unticking a judge that was shown leaves it out (nothing cached for that: a GET says so, a POST
    # starts the job).
    url = reverse("scoring:report-json", args=[first.slug]) + query.replace(f"&ai={judges_1[0].pk}", "")
    assert client.get(url).status_code == 404
    without = client.post(url)
    assert without.status_code == 202
    every_judge = set(
        Judgment.objects.filter(pair__campaign__in=[first, second], annotator__kind="ai").values_list(
            "annotator_id", flat=True
        )
    )
    chosen = Job.objects.get(pk=without.json()["job_id"]).params["report"]["ai_judge_ids"]
    assert chosen == sorted(every_judge - {judges_1[0].pk}) and second_judge.pk in chosen
    assert Report.objects.filter(campaign=first).count() == 1


def _field_names(value: Any, found: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            found.add(key)
            _field_names(inner, found)
    elif isinstance(value, list):
        for inner in value:
            _field_names(inner, found)
    return found


def test_the_schema_document_names_every_field_the_report_has(aspects):
    campaign, *_ = build_campaign(aspects, n_pairs=6)
    report = report_build(params=ReportParameters(campaign_ids=(campaign.pk,), n_resamples=10))
    # Names inside backtick spans: `field`, and the fields of `{id, slug, name}` / `{"estimate": ...}`.
    spans = re.findall(r"`([^`]+)`", SCHEMA_DOC.read_text())
    documented = {name for span in spans for name in re.findall(r"[a-z_][a-z_0-9]*", span)}
    undocumented = _field_names(report, set()) - documented
    assert not undocumented, f"fields missing from docs/report-schema.md: {sorted(undocumented)}"
