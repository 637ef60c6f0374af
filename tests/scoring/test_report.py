"""Agreement reports end to end: factories -> selectors -> scoring.stats -> JSON, through the Celery job,
the management command and the pages; figures checked against scoring.stats and reference libraries."""

from __future__ import annotations

import io
import json
import random
import time

import krippendorff
import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse
from sklearn.metrics import cohen_kappa_score

from annotate.models import Annotator, Judgment
from core.models import Job
from scoring.models import Report
from scoring.report_params import ReportParameters
from scoring.selectors import JudgmentFilter, judgment_arrays
from scoring.services.reports import report_build
from scoring.stats import (
    agreement_statistic,
    bootstrap_interval,
    bradley_terry,
    bradley_terry_leaderboard,
    group_agreement,
    group_pair_counts,
    majority_vote,
    vote_counts,
)
from tests.factories import (
    AdminFactory,
    AIAnnotatorFactory,
    CampaignFactory,
    GeneratorFactory,
    HumanAnnotatorFactory,
    ImageFactory,
    JudgmentFactory,
    PairFactory,
    PromptFactory,
    UserFactory,
)

CODES = {"A": 0, "tie": 1, "B": 2}
RESAMPLES = 200


def build_campaign(aspects, *, n_pairs: int = 14, seed: int = 5):
    """A campaign with 3 generators, 4 humans (one flagged), 3 humans per pair and two AI judges (one asked twice)."""
    rng = random.Random(seed)
    # Presented orders from their own stream, so the votes are those of the same seed without orders.
    sides = random.Random(seed + 10_000)
    campaign = CampaignFactory()
    generators = [GeneratorFactory(name=f"gen-{seed}-{k}") for k in range(3)]
    humans = [HumanAnnotatorFactory() for _ in range(4)]
    humans[3].status = Annotator.Status.FLAGGED
    humans[3].save()
    judges = [AIAnnotatorFactory(), AIAnnotatorFactory()]
    used_aspects = aspects[:2]
    for k in range(n_pairs):
        prompt = PromptFactory()
        gen_a, gen_b = rng.sample(generators, 2)
        first, second = sorted(
            [ImageFactory(prompt=prompt, generator=gen_a), ImageFactory(prompt=prompt, generator=gen_b)],
            key=lambda image: image.pk,
        )
        gold = {used_aspects[0].key: "A"} if k < 3 else {}
        pair = PairFactory(
            campaign=campaign,
            prompt=prompt,
            image_a=first,
            image_b=second,
            is_gold=bool(gold),
            gold_answers=gold,
        )
        for aspect in used_aspects:
            lean = rng.choice(["A", "B", "tie"])
            for human in rng.sample(humans, 3):
                choice = lean if rng.random() < 0.6 else rng.choice(["A", "B", "tie"])
                JudgmentFactory(
                    pair=pair,
                    annotator=human,
                    aspect=aspect,
                    choice=choice,
                    duration_s=rng.uniform(2, 20),
                    presented_order=sides.choice(["AB", "BA"]),
                )
            orders = {}
            for judge in judges:
                choice = lean if rng.random() < 0.7 else rng.choice(["A", "B", "tie"])
                orders[judge.pk] = sides.choice(["AB", "BA"])
                JudgmentFactory(
                    pair=pair, annotator=judge, aspect=aspect, choice=choice, presented_order=orders[judge.pk]
                )
            JudgmentFactory(
                pair=pair,
                annotator=judges[0],
                aspect=aspect,
                trial=2,
                presented_order="BA" if orders[judges[0].pk] == "AB" else "AB",
                choice=lean if rng.random() < 0.8 else "tie",
            )
    return campaign, humans, judges, used_aspects


def orm_votes(campaign, aspect, *, statuses=("active",)):
    """The same data read the slow, obvious way, for an independent check of the selector."""
    rows = Judgment.objects.filter(pair__campaign=campaign, aspect=aspect, trial=1).select_related(
        "annotator"
    )
    rows = [r for r in rows if r.annotator.kind == "ai" or r.annotator.status in statuses]
    pair_ids = sorted({r.pair_id for r in rows})
    index = {p: k for k, p in enumerate(pair_ids)}
    return rows, pair_ids, index


def figure(report, aspect_key):
    return next(a for a in report["aspects"] if a["key"] == aspect_key)


@pytest.mark.django_db
def test_selector_arrays_match_the_orm(aspects):
    campaign, humans, judges, used = build_campaign(aspects)
    data = judgment_arrays(flt=JudgmentFilter(campaign_ids=(campaign.pk,)))
    expected = Judgment.objects.filter(pair__campaign=campaign).exclude(annotator=humans[3])
    assert data.size == expected.count()
    got = {
        (int(data.pair_ids[i]), int(data.annotator_ids[j]), int(data.aspect_ids[s]), int(t), int(c), bool(o))
        for i, j, s, t, c, o in zip(
            data.item, data.judge, data.aspect, data.trial, data.choice, data.a_first, strict=True
        )
    }
    want = {
        (r.pair_id, r.annotator_id, r.aspect_id, r.trial, CODES[r.choice], r.presented_order == "AB")
        for r in expected
    }
    assert {o for *_, o in want} == {True, False}
    assert got == want
    with_flagged = judgment_arrays(flt=JudgmentFilter(campaign_ids=(campaign.pk,), include_flagged=True))
    assert with_flagged.size == Judgment.objects.filter(pair__campaign=campaign).count()
    only_one = judgment_arrays(flt=JudgmentFilter(campaign_ids=(campaign.pk,), ai_judge_ids=(judges[1].pk,)))
    assert judges[0].pk not in only_one.annotator_ids and judges[1].pk in only_one.annotator_ids


@pytest.mark.django_db
def test_report_figures_equal_scoring_stats_and_reference_libraries(aspects):
    campaign, humans, judges, used = build_campaign(aspects)
    report = report_build(params=ReportParameters(campaign_ids=(campaign.pk,), n_resamples=RESAMPLES, seed=3))
    json.dumps(report, allow_nan=False)  # NaN became null
    aspect = used[0]
    got = figure(report, aspect.key)
    rows, pair_ids, index = orm_votes(campaign, aspect)
    n_items = len(pair_ids)
    human_rows = [r for r in rows if r.annotator.kind == "human"]
    item = np.array([index[r.pair_id] for r in rows])
    choice = np.array([CODES[r.choice] for r in rows])
    is_human = np.array([r.annotator.kind == "human" for r in rows])

    # MT-Bench agreement and its interval: the same draws as bootstrap_interval with the same seed.
    counts = group_pair_counts(item, choice, n_items=n_items, group1=is_human)
    expected = group_agreement(item, choice, n_items=n_items, group1=is_human)
    hh = got["human"]["agreement"]
    assert hh["with_ties"]["estimate"] == pytest.approx(expected.with_ties.rate)
    assert hh["without_ties"]["estimate"] == pytest.approx(expected.without_ties.rate)
    assert hh["with_ties"]["n_pairs"] == expected.with_ties.n_pairs
    interval = bootstrap_interval(agreement_statistic(counts), n_resamples=RESAMPLES, seed=3)
    assert (hh["with_ties"]["low"], hh["with_ties"]["high"]) == pytest.approx((interval.low, interval.high))
    assert hh["with_ties"]["low"] <= hh["with_ties"]["estimate"] <= hh["with_ties"]["high"]

    # Krippendorff's alpha against the krippendorff package (humans x pairs, NaN where missing).
    human_ids = sorted({r.annotator_id for r in human_rows})
    matrix = np.full((len(human_ids), n_items), np.nan)
    for r in human_rows:
        matrix[human_ids.index(r.annotator_id), index[r.pair_id]] = CODES[r.choice]
    for level in ("nominal", "ordinal"):
        reference = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
        assert got["human"][f"alpha_{level}"]["estimate"] == pytest.approx(reference)

    # Cohen's kappa of each AI judge against the human majority, against scikit-learn.
    majority = majority_vote(vote_counts(item[is_human], choice[is_human], n_items=n_items))
    for judge in judges:
        mine = [r for r in rows if r.annotator_id == judge.pk]
        ai = [CODES[r.choice] for r in mine if majority[index[r.pair_id]] >= 0]
        maj = [int(majority[index[r.pair_id]]) for r in mine if majority[index[r.pair_id]] >= 0]
        entry = next(e for e in got["ai"] if e["judge"]["id"] == judge.pk)
        assert entry["kappa"]["estimate"] == pytest.approx(cohen_kappa_score(ai, maj, labels=[0, 1, 2]))
        assert entry["agreement_with_majority"]["with_ties"]["estimate"] == pytest.approx(
            np.mean(np.array(ai) == maj)
        )
        assert np.array(entry["confusion"]["counts"]).sum() == len(ai)

    # Swap consistency: judge 0 was asked twice, judge 1 once.
    entries = {e["judge"]["id"]: e for e in got["ai"]}
    assert entries[judges[1].pk]["swap_consistency"] is None
    trial_2 = {
        r.pair_id: r.choice for r in Judgment.objects.filter(annotator=judges[0], aspect=aspect, trial=2)
    }
    trial_1 = {r.pair_id: r.choice for r in rows if r.annotator_id == judges[0].pk}
    same = np.mean([trial_1[p] == trial_2[p] for p in trial_2])
    assert entries[judges[0].pk]["swap_consistency"]["with_ties"]["estimate"] == pytest.approx(same)

    # Bradley–Terry from human votes: strengths and intervals as bradley_terry_leaderboard gives them.
    pair_gens = {
        p.pk: (p.image_a.generator_id, p.image_b.generator_id)
        for p in campaign.pairs.select_related("image_a", "image_b")
    }
    gen_ids = sorted({g for pair in pair_gens.values() for g in pair})
    # Gold pairs check judges, not generators: leaderboards leave them out.
    ranked_rows = [r for r in human_rows if not r.pair.is_gold]
    assert len(ranked_rows) < len(human_rows)
    gen_a = np.array([gen_ids.index(pair_gens[r.pair_id][0]) for r in ranked_rows])
    gen_b = np.array([gen_ids.index(pair_gens[r.pair_id][1]) for r in ranked_rows])
    outcome = np.array([CODES[r.choice] for r in ranked_rows])
    human_items = np.array([index[r.pair_id] for r in ranked_rows])
    strengths = bradley_terry(gen_a, gen_b, outcome, n_generators=len(gen_ids))
    board = bradley_terry_leaderboard(
        gen_a,
        gen_b,
        outcome,
        n_generators=len(gen_ids),
        item=human_items,
        n_items=n_items,
        n_resamples=RESAMPLES,
        seed=3,
    )
    for row in got["leaderboards"]["human"]["generators"]:
        k = gen_ids.index(row["generator_id"])
        assert row["strength"] == pytest.approx(strengths[k], abs=1e-9)
        assert (row["low"], row["high"]) == pytest.approx((board.low[k], board.high[k]), abs=1e-9)
        assert row["n_comparisons"] == board.n_comparisons[k]
    assert [r["rank"] for r in got["leaderboards"]["human"]["generators"]] == [1, 2, 3]
    for ai_board in got["leaderboards"]["ai"]:
        assert ai_board["kendall_tau_vs_human"] is None or -1 <= ai_board["kendall_tau_vs_human"] <= 1

    # Per-annotator reliability: gold accuracy from Pair.gold_answers, median seconds.
    for row in got["annotators"]:
        mine = [r for r in human_rows if r.annotator_id == row["annotator"]["id"]]
        assert row["n_judgments"] == len(mine)
        assert row["median_seconds"] == pytest.approx(float(np.median([r.duration_s for r in mine])))
        gold = [r for r in mine if r.pair.is_gold]
        assert row["n_gold"] == len(gold)
        if gold:
            assert row["gold_accuracy"] == pytest.approx(np.mean([r.choice == "A" for r in gold]))

    # Aspects of the campaign without judgments are present, with null figures.
    empty = figure(report, aspects[3].key)
    assert empty["human"]["agreement"]["with_ties"]["estimate"] is None
    assert all(e["n_judgments"] == 0 and e["kappa"]["estimate"] is None for e in empty["ai"])


@pytest.mark.django_db
def test_flagged_workers_are_excluded_by_default_and_included_with_the_switch(aspects):
    campaign, humans, judges, used = build_campaign(aspects)
    flagged = humans[3]
    default = io.StringIO()
    call_command("agreement_report", campaign.slug, "--json", "--resamples", "50", stdout=default)
    included = io.StringIO()
    call_command(
        "agreement_report", campaign.slug, "--json", "--resamples", "50", "--include-flagged", stdout=included
    )
    without, with_flagged = json.loads(default.getvalue()), json.loads(included.getvalue())
    assert without["schema"] == "visionprefer.agreement-report" and without["schema_version"] == 2
    assert without["totals"]["n_humans"] == 3 and with_flagged["totals"]["n_humans"] == 4
    names = {row["annotator"]["name"] for row in figure(with_flagged, used[0].key)["annotators"]}
    assert flagged.name in names
    assert flagged.name not in {
        row["annotator"]["name"] for row in figure(without, used[0].key)["annotators"]
    }
    assert (
        with_flagged["totals"]["n_judgments"] - without["totals"]["n_judgments"] == flagged.judgments.count()
    )
    # The command caches what it computed, one entry per parameter set.
    assert Report.objects.filter(campaign=campaign).values("params_hash").distinct().count() == 2


@pytest.mark.django_db
def test_ai_judge_filter_and_aspect_filter(aspects):
    campaign, humans, judges, used = build_campaign(aspects)
    out = io.StringIO()
    call_command(
        "agreement_report", campaign.slug, "--json", "--resamples", "20", "--ai-judge", judges[1].name,
        "--aspect", used[1].key, stdout=out,
    )  # fmt: skip
    report = json.loads(out.getvalue())
    assert [a["key"] for a in report["aspects"]] == [used[1].key]
    assert [j["id"] for j in report["ai_judges"]] == [judges[1].pk]


def wait_for_job(job_id: int, timeout: float = 60.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish within {timeout}s")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_report_job_runs_on_the_real_worker_and_caches_the_report(worker, aspects, client):
    campaign, humans, judges, used = build_campaign(aspects)
    admin = AdminFactory()
    client.force_login(admin)

    # No cached report yet: a GET says so (404) and starts nothing; a POST starts the job (202 with its id).
    assert client.get(reverse("scoring:report-json", args=[campaign.slug])).status_code == 404
    response = client.post(reverse("scoring:report-json", args=[campaign.slug]))
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    job = wait_for_job(job_id)
    assert job.status == Job.Status.SUCCEEDED, job.error + job.log
    assert job.progress_done == job.progress_total == 3 + 4  # load, 4 aspects, bootstrap, store
    report = Report.objects.get(pk=job.result["report_id"])
    assert (
        report.job_id == job.pk
        and report.n_judgments == Judgment.objects.exclude(annotator=humans[3]).count()
    )

    # Same parameters -> same figures as computing in-process (the bootstrap is seeded).
    params = ReportParameters(campaign_ids=(campaign.pk,))
    assert report.params_hash == params.key
    direct = report_build(params=params)
    for key in ("aspects", "totals", "generators", "parameters"):
        assert report.data[key] == direct[key]

    cached = client.get(reverse("scoring:report-json", args=[campaign.slug]))
    assert cached.status_code == 200 and cached.json()["aspects"] == report.data["aspects"]

    page = client.get(reverse("scoring:report", args=[campaign.slug]) + f"?aspect={used[1].key}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "Generator leaderboard" in html and judges[0].name in html

    # Refresh from the page joins or starts a job and returns the polling partial.
    refresh = client.post(reverse("scoring:report-refresh", args=[campaign.slug]), HTTP_HX_REQUEST="true")
    assert refresh.status_code == 200 and 'hx-trigger="every 2s"' in refresh.content.decode()
    new_job = Job.objects.filter(kind="report").exclude(pk=job.pk).get()
    finished = wait_for_job(new_job.pk)
    assert finished.status == Job.Status.SUCCEEDED
    poll = client.get(
        reverse("scoring:report-progress", args=[campaign.slug, new_job.pk]), HTTP_HX_REQUEST="true"
    )
    assert poll["HX-Refresh"] == "true"
    assert Report.objects.filter(campaign=campaign).count() == 2


@pytest.mark.django_db
def test_report_pages_are_for_admins_only(aspects, client):
    campaign = CampaignFactory()
    assert client.get(reverse("scoring:report-json", args=[campaign.slug])).status_code == 401
    page = client.get(reverse("scoring:report", args=[campaign.slug]))
    assert page.status_code == 302 and "/login/" in page["Location"]
    client.force_login(UserFactory())
    assert client.get(reverse("scoring:report", args=[campaign.slug])).status_code == 403
    assert client.get(reverse("scoring:report-json", args=[campaign.slug])).status_code == 403
    client.force_login(AdminFactory())
    empty = client.get(reverse("scoring:report", args=[campaign.slug]))
    assert empty.status_code == 200 and "No report for these filters yet" in empty.content.decode()


def test_parameters_hash_is_canonical():
    one = ReportParameters(campaign_ids=(1, 3, 2), ai_judge_ids=(5, 4))
    two = ReportParameters(campaign_ids=(1, 2, 3), ai_judge_ids=(4, 5))
    assert one.key == two.key
    assert ReportParameters.from_dict(one.as_dict()).key == one.key
    assert (
        ReportParameters(campaign_ids=(1,), include_flagged=True).key
        != ReportParameters(campaign_ids=(1,)).key
    )
