"""Fair comparisons end to end: a position-biased AI judge labels pairs through a real annotation job,
and the agreement report measures its bias instead of turning it into a difference between generators."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotate.models import Judgment
from core.jobs import job_run
from core.models import Job
from pipeline.services.annotation import annotation_start
from pipeline.services.judges import judge_annotator
from scoring.report_params import ReportParameters
from scoring.services.reports import report_build, report_compute
from tests.factories import (
    AdminFactory,
    AIAnnotatorFactory,
    AIJudgeConfigFactory,
    CampaignFactory,
    GeneratorFactory,
    ImageFactory,
    PairFactory,
    PromptFactory,
)

pytestmark = pytest.mark.django_db
N_PAIRS = 40


def equal_generators_campaign(aspects):
    """Two generators of equal quality (no defects anywhere); the early one's image is always image A,
    because it was rendered first and pairs store the lower image id as A."""
    campaign = CampaignFactory(aspects=aspects[:1])
    early, late = GeneratorFactory(name="early-gen"), GeneratorFactory(name="late-gen")
    for _ in range(N_PAIRS):
        prompt = PromptFactory()
        campaign.prompts.add(prompt)
        first = ImageFactory(prompt=prompt, generator=early)
        second = ImageFactory(prompt=prompt, generator=late)
        PairFactory(campaign=campaign, prompt=prompt, image_a=first, image_b=second)
    return campaign, early, late


def test_a_judge_that_always_picks_the_first_image_is_flagged_and_favours_no_generator(aspects):
    campaign, early, late = equal_generators_campaign(aspects)
    config = AIJudgeConfigFactory(swap_trial=True, options={"noise": 0.0, "first_bias": 1.0})
    job = annotation_start(campaign=campaign, judge_config=config)
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    annotator = judge_annotator(config)
    first_trial = Judgment.objects.filter(annotator=annotator, trial=1)
    assert first_trial.count() == N_PAIRS
    # The judge answered "the first image" every time, whichever side that was.
    for judgment in Judgment.objects.filter(annotator=annotator):
        assert judgment.choice == ("A" if judgment.presented_order == "AB" else "B")

    report = report_build(params=ReportParameters(campaign_ids=(campaign.pk,), n_resamples=500, seed=2))
    aspect = report["aspects"][0]
    (board,) = aspect["leaderboards"]["ai"]
    strengths = {row["generator_id"]: row for row in board["generators"]}
    # Two generators of equal quality: neither strength differs from the other beyond its interval.
    # The sides are fair coin flips per pair (seeded by the job, so they change with its id): the early
    # generator wins about half of the first trials, never all of them as storage order made it. Bounds that
    # 40 fair flips leave with probability < 0.001, where a 95% interval around 0 fails one job in twenty.
    early_wins = first_trial.filter(choice="A").count()
    assert 0.2 * N_PAIRS <= early_wins <= 0.8 * N_PAIRS, early_wins
    for row in strengths.values():
        assert abs(row["strength"]) < 1.0, row  # storage order gave the early generator every win
    assert {early.pk, late.pk} == set(strengths)

    # The bias is measured instead: every non-tie choice went to the first-shown image, in both orders.
    (entry,) = aspect["ai"]
    bias = entry["position_bias"]
    assert bias["share_first"] == {"estimate": 1.0, "low": 1.0, "high": 1.0}
    assert bias["flagged"] and bias["enough_data"]
    assert bias["n_decided_a_first"] + bias["n_decided_b_first"] == 2 * N_PAIRS
    assert min(bias["n_decided_a_first"], bias["n_decided_b_first"]) >= 10
    # Asked again with the sides swapped it always changed its answer: the agreement figures get a warning.
    assert entry["swap_consistency"]["with_ties"]["estimate"] == 0.0 and entry["low_swap_consistency"]


def test_before_the_fix_the_same_judge_made_a_spurious_generator_difference(aspects, client):
    """What the judge produced when it was always shown image A first: every pair to the early generator,
    a leaderboard difference far beyond its interval, and no way to see the position bias (one order)."""
    campaign, early, late = equal_generators_campaign(aspects)
    legacy = AIAnnotatorFactory(name="legacy-first-picker")
    Judgment.objects.bulk_create(
        Judgment(pair=pair, annotator=legacy, aspect=aspects[0], choice="A", presented_order="AB")
        for pair in campaign.pairs.all()
    )
    # The page's default parameters, so the page shows this report.
    report = report_compute(campaign=campaign, params=ReportParameters(campaign_ids=(campaign.pk,))).data
    aspect = report["aspects"][0]
    rows = {row["generator_id"]: row for row in aspect["leaderboards"]["ai"][0]["generators"]}
    assert rows[early.pk]["low"] > 0 > rows[late.pk]["high"]
    bias = aspect["ai"][0]["position_bias"]
    assert bias["share_first"]["estimate"] is None and not bias["enough_data"] and not bias["flagged"]
    assert (bias["n_decided_a_first"], bias["n_decided_b_first"]) == (N_PAIRS, 0)

    client.force_login(AdminFactory())
    page = client.get(reverse("scoring:report", args=[campaign.slug])).content.decode()
    assert "Position bias" in page and "not enough data" in page
