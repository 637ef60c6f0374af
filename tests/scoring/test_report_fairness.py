"""The report's fair-comparison figures recomputed independently from ORM rows: position bias per judge,
per human and for humans pooled, and the human-range verdict with its paired interval, each against a
brute-force bootstrap on the very resamples the report draws; the majority rule as a parameter; the
verdict end to end for a judge as accurate as the humans, a much weaker one and a reward model; the page."""

from __future__ import annotations

import io
import json
from itertools import combinations

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotate.models import Annotator, Generator, Image, Judgment, Pair, Prompt
from core.models import Job
from scoring.report_params import MAJORITY_RULE_NAMES, ReportParameters
from scoring.services.reports import LOW_SWAP_CONSISTENCY, report_build, report_compute
from scoring.stats import MAJORITY_RULES, Interval, verdict_rule
from scoring.stats.tests.synthetic import brute_force_bootstrap
from tests.factories import AdminFactory, AIAnnotatorFactory, CampaignFactory, HumanAnnotatorFactory
from tests.scoring.test_report import build_campaign, figure

pytestmark = pytest.mark.django_db
RESAMPLES, SEED = 200, 3


def share_first(rows: list[tuple[str, str]]) -> float:
    """(first-shown share with A first + the same with B first) / 2 over (choice, order) rows; NaN if an
    order has no non-tie choice."""
    shares = []
    for order, first in (("AB", "A"), ("BA", "B")):
        decided = [c for c, o in rows if o == order and c != "tie"]
        if not decided:
            return float("nan")
        shares.append(sum(c == first for c in decided) / len(decided))
    return (shares[0] + shares[1]) / 2


def item_rate(pairs: list[tuple[str, str]], ties: bool) -> float | None:
    kept = [(a, b) for a, b in pairs if ties or (a != "tie" and b != "tie")]
    return sum(a == b for a, b in kept) / len(kept) if kept else None


def difference(judge_votes: dict[int, str], human_votes: dict[int, list[str]], items, ties: bool) -> float:
    """Judge–human minus human–human agreement, item-weighted, over drawn items (with repeats)."""
    judge_rates, human_rates = [], []
    for pair_id in items:
        if pair_id not in judge_votes:
            continue
        humans = human_votes.get(pair_id, [])
        a = item_rate([(judge_votes[pair_id], h) for h in humans], ties)
        h = item_rate(list(combinations(humans, 2)), ties)
        if a is not None and h is not None:
            judge_rates.append(a)
            human_rates.append(h)
    return float(np.mean(judge_rates) - np.mean(human_rates)) if judge_rates else float("nan")


def test_position_bias_and_verdicts_equal_brute_force_on_the_reports_resamples(aspects):
    campaign, humans, judges, used = build_campaign(aspects, n_pairs=40, seed=21)
    report = report_build(
        params=ReportParameters(campaign_ids=(campaign.pk,), n_resamples=RESAMPLES, seed=SEED)
    )
    # Items are every pair with a selected judgment, in id order: what the report resamples.
    rows = list(
        Judgment.objects.filter(pair__campaign=campaign)
        .exclude(annotator=humans[3])
        .select_related("annotator")
    )
    pair_ids = sorted({r.pair_id for r in rows})
    assert report["totals"]["n_pairs"] == len(pair_ids)

    def check_position(got, selected):
        by_item = {p: [(r.choice, r.presented_order) for r in selected if r.pair_id == p] for p in pair_ids}
        estimate = share_first([v for vs in by_item.values() for v in vs])
        low, high = brute_force_bootstrap(
            len(pair_ids),
            lambda draw: share_first([v for k in draw for v in by_item[pair_ids[k]]]),
            n_resamples=RESAMPLES,
            seed=SEED,
        )
        decided = {o: sum(c != "tie" and order == o for c, order in (v for vs in by_item.values() for v in vs))
                   for o in ("AB", "BA")}  # fmt: skip
        assert got["share_first"]["estimate"] == pytest.approx(estimate)
        assert (got["share_first"]["low"], got["share_first"]["high"]) == pytest.approx((low, high))
        assert (got["n_decided_a_first"], got["n_decided_b_first"]) == (decided["AB"], decided["BA"])
        enough = min(decided.values()) >= 10
        assert got["enough_data"] == enough
        assert got["flagged"] == (enough and (low > 0.5 or high < 0.5))

    for aspect in used:
        got = figure(report, aspect.key)
        mine = [r for r in rows if r.aspect_id == aspect.pk]
        human_rows = [r for r in mine if r.annotator.kind == "human"]
        check_position(got["human"]["position_bias"], human_rows)
        for row in got["annotators"]:
            check_position(
                row["position_bias"], [r for r in human_rows if r.annotator_id == row["annotator"]["id"]]
            )
        human_votes: dict[int, list[str]] = {}
        for r in human_rows:
            human_votes.setdefault(r.pair_id, []).append(r.choice)
        for entry in got["ai"]:
            judge_rows = [r for r in mine if r.annotator_id == entry["judge"]["id"]]
            # Both trials: judge 0 was asked twice, the second time in the mirrored order.
            check_position(entry["position_bias"], judge_rows)
            judge_votes = {r.pair_id: r.choice for r in judge_rows if r.trial == 1}
            for ties, label in ((True, "with_ties"), (False, "without_ties")):
                verdict = entry["verdict"][label]
                estimate = difference(judge_votes, human_votes, pair_ids, ties)
                low, high = brute_force_bootstrap(
                    len(pair_ids),
                    lambda draw: difference(judge_votes, human_votes, [pair_ids[k] for k in draw], ties),  # noqa: B023
                    n_resamples=RESAMPLES,
                    seed=SEED,
                )
                assert verdict["difference"]["estimate"] == pytest.approx(estimate)
                assert (verdict["difference"]["low"], verdict["difference"]["high"]) == pytest.approx(
                    (low, high)
                )
                compared = [
                    p for p, c in judge_votes.items()
                    if item_rate(list(combinations(human_votes.get(p, []), 2)), ties) is not None
                    and item_rate([(c, h) for h in human_votes.get(p, [])], ties) is not None
                ]  # fmt: skip
                assert verdict["n_items"] == len(compared)
                name, reason = verdict_rule(difference=Interval(estimate, low, high), n_items=len(compared))
                assert (verdict["verdict"], verdict["reason"]) == (name, reason)
                assert verdict["min_items"] == 30 and verdict["margin"] == 0.05
            # Low swap consistency: the figure under the report's stated threshold.
            swap = entry["swap_consistency"]
            assert entry["low_swap_consistency"] == (
                swap is not None and swap["with_ties"]["estimate"] < LOW_SWAP_CONSISTENCY
            )
    assert report["thresholds"]["low_swap_consistency"] == LOW_SWAP_CONSISTENCY


def test_the_majority_rule_is_a_report_parameter_and_part_of_the_cache_key():
    assert set(MAJORITY_RULE_NAMES) == set(MAJORITY_RULES)
    strict = ReportParameters(campaign_ids=(1,))
    tie = ReportParameters(campaign_ids=(1,), majority_rule="tie")
    assert strict.majority_rule == "strict" and strict.as_dict()["majority_rule"] == "strict"
    assert strict.key != tie.key
    assert ReportParameters.from_dict(tie.as_dict()) == tie
    assert ReportParameters.from_dict({"campaign_ids": [1]}).majority_rule == "strict"
    with pytest.raises(ValueError, match="majority_rule must be one of strict, tie; got 'loose'"):
        ReportParameters(campaign_ids=(1,), majority_rule="loose")  # type: ignore[arg-type]


def bulk_study(aspect, *, n_pairs: int, seed: int):
    """A campaign of ``n_pairs`` pairs with 3 of 8 humans per pair, written with bulk inserts.

    Each pair has a latent choice distribution (Dirichlet 0.8, 0.2, 0.8); humans vote from it. Judges:
    "peer" (an AI judge voting from the same distribution, i.e. exactly as accurate as a human), "weak"
    (an AI judge answering uniformly at random 80% of the time) and "vp-score", a reward model (annotator
    kind "model") voting like a human. Everyone sees a random side first.
    """
    rng = np.random.default_rng(seed)
    campaign = CampaignFactory(aspects=[aspect])
    generators = [Generator.objects.create(name=f"bulk-{seed}-{k}", kind="imported") for k in range(2)]
    prompts = Prompt.objects.bulk_create(
        [
            Prompt(text=f"bulk {seed} {k}", text_sha256=f"{seed:08x}{k:056x}", source="test")
            for k in range(n_pairs)
        ]
    )
    campaign.prompts.add(*prompts)
    images = Image.objects.bulk_create(
        [
            Image(
                prompt=prompt, generator=generators[side], file=f"images/bulk-{seed}-{k}-{side}.png",
                sha256=f"{seed:08x}{k:048x}{side:08x}", format="PNG", width=8, height=8, size_bytes=1,
            )
            for k, prompt in enumerate(prompts)
            for side in (0, 1)
        ]
    )  # fmt: skip
    pairs = Pair.objects.bulk_create(
        [
            Pair(campaign=campaign, prompt=prompt, image_a=images[2 * k], image_b=images[2 * k + 1])
            for k, prompt in enumerate(prompts)
        ]
    )
    humans = [HumanAnnotatorFactory() for _ in range(8)]
    peer, weak = AIAnnotatorFactory(name="peer"), AIAnnotatorFactory(name="weak")
    model = Annotator.objects.create(kind="model", name="vp-score")
    distribution = rng.dirichlet([0.8, 0.2, 0.8], size=n_pairs)
    labels = np.array(["A", "tie", "B"])
    judgments = []
    for k, pair in enumerate(pairs):
        voters = [humans[h] for h in rng.choice(8, size=3, replace=False)] + [peer, weak, model]
        choices = labels[rng.choice(3, size=len(voters), p=distribution[k])]
        if rng.random() < 0.8:
            choices[4] = labels[rng.integers(0, 3)]  # the weak judge guessing
        for annotator, choice in zip(voters, choices, strict=True):
            judgments.append(
                Judgment(
                    pair=pair, annotator=annotator, aspect=aspect, choice=str(choice),
                    presented_order="AB" if rng.random() < 0.5 else "BA",
                )
            )  # fmt: skip
    Judgment.objects.bulk_create(judgments)
    return campaign, peer, weak, model


@pytest.mark.slow
def test_verdict_within_for_a_judge_as_accurate_as_the_humans_below_for_a_weak_one(aspects):
    campaign, peer, weak, model = bulk_study(aspects[0], n_pairs=800, seed=7)
    report = report_build(params=ReportParameters(campaign_ids=(campaign.pk,), n_resamples=1000, seed=0))
    (aspect,) = [a for a in report["aspects"] if a["human"]["n_judgments"]]
    entries = {entry["judge"]["name"]: entry for entry in aspect["ai"]}
    # The reward model gets the same row as the AI judges, after them.
    assert [e["judge"]["name"] for e in aspect["ai"]] == ["peer", "weak", "vp-score"]
    assert (
        entries["vp-score"]["judge"]["kind"] == "model"
        and entries["vp-score"].keys() == entries["peer"].keys()
    )
    for name in ("peer", "vp-score"):
        verdict = entries[name]["verdict"]["with_ties"]
        assert verdict["verdict"] == "within", (name, verdict["reason"])
        assert verdict["label"] == "within the range of a human annotator"
        assert -0.05 <= verdict["difference"]["low"] <= 0 <= verdict["difference"]["high"]
        assert verdict["n_items"] == 800 and verdict["n_judge_pairs"] == 3 * 800
        assert verdict["n_human_pairs"] == 3 * 800
    weak_verdict = entries["weak"]["verdict"]["with_ties"]
    assert weak_verdict["verdict"] == "below" and weak_verdict["difference"]["high"] < 0
    assert weak_verdict["judge_human"]["estimate"] < weak_verdict["human_human"]["estimate"] - 0.1
    # Without ties the weak judge is still measurably worse than a person.
    assert entries["weak"]["verdict"]["without_ties"]["verdict"] == "below"
    # Nobody here has a position bias.
    assert not any(e["position_bias"]["flagged"] for e in aspect["ai"])


def test_too_few_pairs_give_not_enough_data_with_the_counts(aspects):
    campaign, peer, weak, model = bulk_study(aspects[0], n_pairs=25, seed=8)
    report = report_build(params=ReportParameters(campaign_ids=(campaign.pk,), n_resamples=100))
    (aspect,) = [a for a in report["aspects"] if a["human"]["n_judgments"]]
    for entry in aspect["ai"]:
        verdict = entry["verdict"]["with_ties"]
        assert verdict["verdict"] == "not enough data" and verdict["n_items"] == 25
        assert (
            "25 pairs have a vote from this judge and from at least two humans; 30 are needed"
            in verdict["reason"]
        )


def test_the_page_shows_verdicts_position_bias_the_majority_rule_and_the_swap_warning(aspects, client):
    campaign, humans, judges, used = build_campaign(aspects, n_pairs=12, seed=4)
    flipper = AIAnnotatorFactory(name="flip-flopper")
    for pair in campaign.pairs.all():
        # Trial 1 and trial 2 (sides swapped) always disagree: swap consistency 0.
        Judgment.objects.create(
            pair=pair, annotator=flipper, aspect=used[0], choice="A", presented_order="AB"
        )
        Judgment.objects.create(
            pair=pair, annotator=flipper, aspect=used[0], choice="B", presented_order="BA", trial=2
        )
    report = report_compute(campaign=campaign, params=ReportParameters(campaign_ids=(campaign.pk,))).data
    entry = next(e for e in figure(report, used[0].key)["ai"] if e["judge"]["name"] == "flip-flopper")
    assert entry["low_swap_consistency"] and entry["swap_consistency"]["with_ties"]["estimate"] == 0.0

    client.force_login(AdminFactory())
    url = reverse("scoring:report", args=[campaign.slug])
    html = client.get(f"{url}?aspect={used[0].key}").content.decode()
    for text in (
        "Can the AI labels stand in for people?",
        "Verdict: within the range of a human annotator?",
        "Position bias",
        "Humans (pooled)",
        "human majority rule <b>strict</b>",
        'name="majority_rule"',
        "flip-flopper: low swap consistency.",
        "same answer on 0 of 12 pairs",
        "item-weighted",
        "A verdict needs at least 30 such pairs",
    ):
        assert text in html, text
    majority = figure(report, used[0].key)["human"]["majority"]
    assert f"{majority['n_split']} of {majority['n_voted']} pairs with human votes are split" in html
    for judge in judges:
        assert judge.name in html
    for row in figure(report, used[0].key)["annotators"]:
        assert row["annotator"]["name"] in html

    # The tie rule is another report: the page offers to compute it, the JSON starts its job.
    tie_page = client.get(f"{url}?filtered=1&majority_rule=tie").content.decode()
    assert "No report for these filters yet" in tie_page
    assert '<option value="tie" selected>' in tie_page
    tie_json = reverse("scoring:report-json", args=[campaign.slug]) + "?majority_rule=tie"
    assert client.get(tie_json).status_code == 404  # nothing cached: a GET changes nothing
    response = client.post(tie_json)
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["job_id"])
    assert job.params["report"]["majority_rule"] == "tie"
    # An unknown rule reads as the default: the cached strict report.
    cached = client.get(reverse("scoring:report-json", args=[campaign.slug]) + "?majority_rule=loose")
    assert cached.status_code == 200 and cached.json()["parameters"]["majority_rule"] == "strict"


def test_the_command_takes_the_majority_rule_and_prints_the_verdicts(aspects):
    campaign, humans, judges, used = build_campaign(aspects, n_pairs=8, seed=6)
    out = io.StringIO()
    call_command(
        "agreement_report", campaign.slug, "--json", "--resamples", "20", "--majority-rule", "tie", stdout=out
    )
    report = json.loads(out.getvalue())
    assert report["parameters"]["majority_rule"] == "tie"
    assert figure(report, used[0].key)["human"]["majority"]["n_left_out"] == 0
    text = io.StringIO()
    call_command("agreement_report", campaign.slug, "--resamples", "20", stdout=text)
    assert f"{judges[0].name}: vs majority" in text.getvalue()
    assert "verdict: not enough data (difference" in text.getvalue()
    with pytest.raises(CommandError, match="invalid choice: 'loose'"):
        call_command("agreement_report", campaign.slug, "--majority-rule", "loose")
