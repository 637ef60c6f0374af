"""Demo generation jobs through the real worker: images rendered, pairs built, gold pairs, idempotent."""

from __future__ import annotations

import pytest

from annotate.models import Generator, Image, Pair
from core.jobs import job_create, job_run
from core.models import Job
from pipeline.jobs import GenerationParams
from pipeline.services.demo import DEMO_GENERATOR, DEMO_GENERATOR_GLITCHY, demo_campaign_seed
from tests.helpers import fresh, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_demo_generation_job_renders_images_builds_pairs_and_is_idempotent(worker, aspects):
    campaign = demo_campaign_seed(n_prompts=3)
    generator = Generator.objects.get(name=DEMO_GENERATOR)
    params = GenerationParams(
        campaign_id=campaign.pk, generator_ids=[generator.pk], images_per_prompt=3, seed=4
    )
    first = job_create(kind="generate", campaign=campaign, queue="default", params=params)
    done = wait_for(lambda: (j := fresh(first.pk)).is_finished and j, timeout=60)
    assert done.status == Job.Status.SUCCEEDED, done.error
    counted = ("images_created", "images_skipped", "pairs_created")  # the result may carry more fields
    assert {k: done.result[k] for k in counted} == {
        "images_created": 9,
        "images_skipped": 0,
        "pairs_created": 9,
    }
    assert Image.objects.count() == 9 and Pair.objects.filter(campaign=campaign).count() == 9
    assert all("defects" in image.params for image in Image.objects.all())

    again = job_create(kind="generate", campaign=campaign, queue="default", params=params)
    redone = wait_for(lambda: (j := fresh(again.pk)).is_finished and j, timeout=60)
    assert {k: redone.result[k] for k in counted} == {
        "images_created": 0,
        "images_skipped": 9,
        "pairs_created": 0,
    }
    assert Image.objects.count() == 9 and Pair.objects.count() == 9


def test_generation_job_mixes_in_fidelity_gold_pairs_from_two_demo_generators(aspects):
    campaign = demo_campaign_seed(n_prompts=2)
    generators = Generator.objects.filter(name__in=[DEMO_GENERATOR, DEMO_GENERATOR_GLITCHY]).order_by("pk")
    assert generators.count() == 2
    params = GenerationParams(
        campaign_id=campaign.pk,
        generator_ids=[g.pk for g in generators],
        images_per_prompt=1,
        seed=3,
        fidelity_gold_pairs=2,
    )
    job = Job.objects.create(kind="generate", campaign=campaign, params=params.to_json())
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    result = fresh(job.pk).result
    # Seeds derive from prompt ids, which depend on what ran before in the test database: when both
    # generators happen to render a prompt without defects the two PNGs are identical and stored once
    # (sha256), so 3 or 4 images, 1 or 2 pairs.
    rendered = Image.objects.filter(generator__in=generators)
    assert result["images_created"] == rendered.count() in (3, 4)
    assert result["pairs_created"] == Pair.objects.filter(campaign=campaign, is_gold=False).count()
    assert result["pairs_created"] == result["images_created"] - 2
    assert result["gold_pairs"] == 2
    gold = list(Pair.objects.filter(campaign=campaign, is_gold=True).select_related("image_a", "image_b"))
    assert len(gold) == 2
    for pair in gold:
        assert pair.gold_answers["fidelity"] in {"A", "B"}
        corrupted = pair.image_b if pair.gold_answers["fidelity"] == "A" else pair.image_a
        assert corrupted.generator.name == "corrupted-copies"
