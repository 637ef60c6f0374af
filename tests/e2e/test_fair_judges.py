"""Fair comparisons end to end: a position-biased AI judge labels pairs through a real annotation job,
and the agreement report measures its bias instead of turning it into a difference between generators."""

from __future__ import annotations

import pytest

from annotate.models import Judgment
from core.jobs import job_run
from core.models import Job
from pipeline.services.annotation import annotation_start
from pipeline.services.judges import judge_annotator
from scoring.report_params import ReportParameters
from scoring.services.reports import report_build
from tests.factories import (
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
    for row in strengths.values():
        assert row["low"] <= 0.0 <= row["high"], row
    assert {early.pk, late.pk} == set(strengths)
