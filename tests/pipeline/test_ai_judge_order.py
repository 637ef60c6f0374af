"""What an AI judge sees first: a random side per pair (seeded per job), trial 2 the mirror, group calls
shuffled, and every order recorded on the call and on each judgment."""

from __future__ import annotations

import pytest

from annotate.models import Judgment
from core.jobs import job_run
from core.models import Job
from pipeline.models import AICall, AIJudgeConfig
from pipeline.services.annotation import annotation_start
from pipeline.services.annotation_calls import annotation_work_units
from pipeline.services.judges import judge_annotator
from tests.factories import (
    AIJudgeConfigFactory,
    CampaignFactory,
    GeneratorFactory,
    ImageFactory,
    PairFactory,
    PromptFactory,
)

pytestmark = pytest.mark.django_db


def stored_orders(pairs) -> dict[int, tuple[int, int]]:
    return {p.pk: (p.image_a_id, p.image_b_id) for p in pairs}


def test_pair_mode_first_trial_is_random_per_pair_and_the_second_its_mirror(aspects):
    campaign = CampaignFactory(aspects=aspects[:1])
    pairs = [PairFactory(campaign=campaign) for _ in range(60)]
    stored = stored_orders(pairs)
    judge = AIJudgeConfigFactory(swap_trial=True)
    units = annotation_work_units(pair_ids=list(stored), judge_config=judge, order_seed="job1|seed0")
    first = {u.pair_id: u.image_ids for u in units if u.trial == 1}
    second = {u.pair_id: u.image_ids for u in units if u.trial == 2}
    assert set(first) == set(second) == set(stored)
    a_first = 0
    for pk, (a, b) in stored.items():
        assert first[pk] in ((a, b), (b, a))
        assert second[pk] == first[pk][::-1]
        a_first += first[pk] == (a, b)
    # Random per pair: about half A-first (60 fair coins land 18..42 heads with probability > 0.999).
    assert 18 <= a_first <= 42
    # Seeded: the same seed gives the same orders, another seed others; one pair's order does not
    # depend on which other pairs are in the job.
    again = annotation_work_units(pair_ids=list(stored), judge_config=judge, order_seed="job1|seed0")
    assert again == units
    other = annotation_work_units(pair_ids=list(stored), judge_config=judge, order_seed="job2|seed0")
    assert {u.pair_id: u.image_ids for u in other if u.trial == 1} != first
    alone = annotation_work_units(pair_ids=[pairs[7].pk], judge_config=judge, order_seed="job1|seed0")
    assert alone[0].image_ids == first[pairs[7].pk]


def test_group_mode_shuffles_each_prompts_images_and_reverses_them_for_trial_two(aspects):
    campaign = CampaignFactory(aspects=aspects[:1])
    generator = GeneratorFactory()
    pair_ids = []
    for _ in range(12):
        prompt = PromptFactory()
        images = sorted(
            (ImageFactory(prompt=prompt, generator=generator) for _ in range(4)), key=lambda i: i.pk
        )
        for k in range(3):
            pair_ids.append(
                PairFactory(campaign=campaign, prompt=prompt, image_a=images[k], image_b=images[k + 1]).pk
            )
    judge = AIJudgeConfigFactory(
        mode=AIJudgeConfig.Mode.GROUP, template_version="vp-group-v1", swap_trial=True
    )
    units = annotation_work_units(pair_ids=pair_ids, judge_config=judge, order_seed="job9|seed0")
    first = {u.prompt_id: u.image_ids for u in units if u.trial == 1}
    second = {u.prompt_id: u.image_ids for u in units if u.trial == 2}
    assert len(first) == 12
    assert all(second[p] == first[p][::-1] for p in first)
    # Shuffled, not stored (ascending id) order: with 4 images, 12 prompts all sorted by chance has
    # probability (1/24)^12.
    assert sum(list(shown) != sorted(shown) for shown in first.values()) >= 6


def test_the_job_records_its_orders_on_calls_and_judgments_and_keeps_old_judgments(aspects):
    campaign = CampaignFactory(aspects=aspects[:1])
    pairs = [PairFactory(campaign=campaign) for _ in range(16)]
    config = AIJudgeConfigFactory(swap_trial=True)
    annotator = judge_annotator(config)
    # A judgment made before orders were random, with its recorded order: it stays as it is.
    old = Judgment.objects.create(
        pair=pairs[0], annotator=annotator, aspect=aspects[0], choice="A", presented_order="AB", trial=1
    )
    job = annotation_start(campaign=campaign, judge_config=config, selection="unlabelled")
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    old.refresh_from_db()
    assert (old.presented_order, old.choice, old.ai_call_id) == ("AB", "A", None)

    stored = stored_orders(pairs)
    calls = AICall.objects.filter(job=job)
    assert calls.count() == 2 * 15
    orders = set()
    for call in calls:
        (pair_id,) = call.pair_ids
        a, b = stored[pair_id]
        order = "AB" if call.image_ids == [a, b] else "BA"
        assert call.image_ids in ([a, b], [b, a])
        orders.add((call.trial, order))
        for judgment in Judgment.objects.filter(ai_call=call):
            assert judgment.presented_order == order and judgment.trial == call.trial
    assert {order for trial, order in orders if trial == 1} == {"AB", "BA"}
