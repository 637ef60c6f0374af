"""The demo shows the product: prompts outside the demo grammar are skipped with a reason, simulated
crowdworkers (graded accuracy, a small position bias) label part of the campaign, and the first agreement
report `make demo` computes has human and AI figures."""

from __future__ import annotations

import io
import random

import pytest
from django.core.management import call_command

from annotate.models import Annotator, Assignment, CampaignWorker, Generator, Image, Judgment
from annotate.services.prompts import prompt_get_or_create
from core.jobs import job_run
from core.models import Job
from pipeline.generation.demo import GRAMMAR_SUMMARY
from pipeline.jobs import GenerationParams
from pipeline.services.demo import (
    DEMO_GENERATOR,
    DEMO_GENERATOR_GLITCHY,
    SIMULATED_WORKERS,
    demo_campaign_seed,
    demo_crowd_simulate,
    simulated_answer,
    simulated_truth,
)
from scoring.models import Report
from tests.helpers import fresh


def generate(campaign, *, images_per_prompt=2, gold=0):
    generators = Generator.objects.filter(name__in=[DEMO_GENERATOR, DEMO_GENERATOR_GLITCHY]).order_by("pk")
    params = GenerationParams(
        campaign_id=campaign.pk,
        generator_ids=[g.pk for g in generators],
        images_per_prompt=images_per_prompt,
        seed=2,
        fidelity_gold_pairs=gold,
    )
    job = Job.objects.create(kind="generate", campaign=campaign, params=params.to_json())
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED, fresh(job.pk).error
    return fresh(job.pk)


@pytest.mark.django_db
def test_prompts_outside_the_demo_grammar_are_skipped_with_a_count_and_a_reason(aspects):
    campaign = demo_campaign_seed(n_prompts=2)
    foreign = [
        prompt_get_or_create(text="an astronaut riding a horse on the moon")[0],
        prompt_get_or_create(text="three red circles with a hat")[0],
    ]
    campaign.prompts.add(*foreign)
    job = generate(campaign, images_per_prompt=1)
    assert job.result["prompts_outside_demo_grammar"] == 2
    assert f"skipped 2 of 4 prompts outside the demo grammar: {GRAMMAR_SUMMARY}" in job.log
    assert "Traceback" not in job.log
    assert not Image.objects.filter(prompt__in=foreign).exists()
    assert Image.objects.filter(prompt__campaigns=campaign).exists()
    assert job.progress_done == job.progress_total == 2 * 2  # two drawable prompts, two generators


def test_the_simulated_truth_follows_the_recorded_defects():
    assert simulated_truth(defects_a=["blur"], defects_b=[], aspect="fidelity") == "B"
    assert simulated_truth(defects_a=[], defects_b=["wrong_count"], aspect="prompt_following") == "A"
    assert simulated_truth(defects_a=["blur"], defects_b=["noise"], aspect="fidelity") == "tie"
    assert simulated_truth(defects_a=["blur"], defects_b=[], aspect="harmlessness") == "tie"


def test_simulated_answers_have_the_stated_accuracy_and_position_bias():
    rng = random.Random(3)
    n = 20_000
    # Always right: truth A shown on the right (swapped) is answered "right".
    assert {simulated_answer(truth="A", swapped=True, accuracy=1.0, left_bias=0.2, allow_tie=True, rng=rng)
            for _ in range(200)} == {"right"}  # fmt: skip
    guesses = [
        simulated_answer(truth="A", swapped=False, accuracy=0.0, left_bias=0.1, allow_tie=True, rng=rng)
        for _ in range(n)
    ]
    share = {side: guesses.count(side) / n for side in ("left", "tie", "right")}
    # A guess: tie 15%, and of the rest 60% left (0.5 + bias): 51% left, 34% right.
    assert (
        abs(share["tie"] - 0.15) < 0.01
        and abs(share["left"] - 0.51) < 0.015
        and abs(share["right"] - 0.34) < 0.015
    )
    answers = [
        simulated_answer(truth="B", swapped=False, accuracy=0.8, left_bias=0.0, allow_tie=False, rng=rng)
        for _ in range(n)
    ]
    assert "tie" not in answers
    assert abs(answers.count("right") / n - (0.8 + 0.2 * 0.5)) < 0.015


@pytest.mark.django_db
def test_simulated_crowdworkers_label_through_the_real_services_with_graded_accuracy(aspects):
    campaign = demo_campaign_seed(n_prompts=8)
    generate(campaign, gold=4)
    result = demo_crowd_simulate(campaign=campaign, seed=1)
    workers = list(Annotator.objects.filter(is_simulated=True).order_by("name"))
    assert len(workers) == len(SIMULATED_WORKERS) == result.workers
    assert all("Simulated worker" in w.name for w in workers)
    # Never flagged for speed; the sloppiest may be flagged by its gold accuracy, as QC should.
    assert all(w.status == Annotator.Status.ACTIVE or "Gold accuracy" in w.status_reason for w in workers)
    links = CampaignWorker.objects.filter(campaign=campaign, annotator__in=workers)
    assert sum(link.submitted for link in links) == result.submitted > 0
    assert all(link.too_fast == 0 and link.submitted <= campaign.worker_quota for link in links)
    assert not Assignment.objects.filter(annotator__in=workers, status="reserved").exists()
    assert result.complete_pairs > 0
    accuracy = []
    for worker in workers:
        right = total = 0
        for judgment in Judgment.objects.filter(annotator=worker).select_related(
            "pair__image_a", "pair__image_b", "aspect"
        ):
            truth = simulated_truth(
                defects_a=judgment.pair.image_a.params.get("defects", []),
                defects_b=judgment.pair.image_b.params.get("defects", []),
                aspect=judgment.aspect.key,
            )
            right += judgment.choice == truth
            total += 1
        accuracy.append(right / total)
    # Graded: the careful first worker beats the sloppy last one by a wide margin (0.92 vs 0.64 stated).
    assert accuracy[0] > 0.85 and accuracy[-1] < 0.8 and accuracy[0] - accuracy[-1] > 0.15, accuracy
    # Nothing runs twice: a second call finds the quota spent.
    assert demo_crowd_simulate(campaign=campaign, seed=1).submitted == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_make_demos_seeded_report_has_human_and_ai_figures(worker, aspects):
    """What `make demo` runs before it says the server is ready: seed_demo --wait, then agreement_report."""
    out = io.StringIO()
    call_command("seed_demo", "--wait", "--prompts", "6", "--timeout", "240", stdout=out)
    log = out.getvalue()
    assert "simulated crowdworkers labelled" in log and "Admin login" in log
    campaign = demo_campaign_seed()
    call_command("agreement_report", campaign.slug, "--resamples", "100", stdout=io.StringIO())
    report = Report.objects.get(campaign=campaign).data
    # Flagged workers are left out by default: the sloppiest simulated worker may be, by gold accuracy.
    assert report["totals"]["n_humans"] >= len(SIMULATED_WORKERS) - 1 and report["totals"]["n_ai_judges"] == 1
    for aspect in report["aspects"]:
        assert aspect["human"]["agreement"]["with_ties"]["estimate"] is not None, aspect["key"]
        (ai,) = aspect["ai"]
        assert ai["agreement_with_majority"]["with_ties"]["estimate"] is not None, aspect["key"]
        assert ai["judge"]["name"] == "simulated-judge"
