"""The assignment engine: overlap, no repeats, closest-to-completion first, expiry, gold mixing, quota."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import Annotator, Assignment, Pair
from annotate.services.assignments import (
    assignment_reserve,
    assignment_skip,
    assignments_expire,
    campaign_worker_get,
    worker_queue_fill,
)
from tests.factories import (
    CampaignFactory,
    GeneratorFactory,
    HumanAnnotatorFactory,
    ImageFactory,
    PromptFactory,
)

pytestmark = pytest.mark.django_db


def campaign_with_pairs(n_pairs: int, n_gold: int = 0, **fields):
    """A campaign whose pairs share a few images of one prompt (pairs differ by their image pair)."""
    campaign = CampaignFactory(**{"gold_rate": 0.0, **fields})
    prompt = PromptFactory()
    campaign.prompts.add(prompt)
    generator = GeneratorFactory()
    n_images = 2
    while n_images * (n_images - 1) // 2 < n_pairs + n_gold:
        n_images += 1
    images = sorted(
        (ImageFactory(prompt=prompt, generator=generator) for _ in range(n_images)), key=lambda i: i.pk
    )
    combos = list(itertools.combinations(images, 2))[: n_pairs + n_gold]
    pairs = [
        Pair(
            campaign=campaign,
            prompt=prompt,
            image_a=a,
            image_b=b,
            is_gold=i < n_gold,
            gold_answers={"prompt_following": "A"} if i < n_gold else {},
        )
        for i, (a, b) in enumerate(combos)
    ]
    Pair.objects.bulk_create(pairs)
    return campaign


def test_each_pair_gets_overlap_distinct_workers_and_no_worker_sees_a_pair_twice(aspects):
    campaign = campaign_with_pairs(4, humans_per_pair=3)
    workers = HumanAnnotatorFactory.create_batch(5)
    got: dict[int, list[int]] = {}
    for worker in workers:
        while (assignment := assignment_reserve(campaign=campaign, annotator=worker)) is not None:
            got.setdefault(worker.pk, []).append(assignment.pair_id)
    per_pair: dict[int, int] = {}
    for pair_ids in got.values():
        assert len(pair_ids) == len(set(pair_ids))
        for pair_id in pair_ids:
            per_pair[pair_id] = per_pair.get(pair_id, 0) + 1
    assert per_pair == {p.pk: 3 for p in campaign.pairs.all()}
    assert set(campaign.pairs.values_list("slots_taken", flat=True)) == {3}


def test_pairs_closest_to_completion_are_served_first(aspects):
    campaign = campaign_with_pairs(3, humans_per_pair=3)
    first = assignment_reserve(campaign=campaign, annotator=HumanAnnotatorFactory())
    second = assignment_reserve(campaign=campaign, annotator=HumanAnnotatorFactory())
    assert first.pair_id == second.pair_id  # the started pair is finished before a new one is opened


def test_expired_reservation_returns_the_pair_to_the_pool(aspects):
    campaign = campaign_with_pairs(1, humans_per_pair=1, reservation_minutes=10)
    slow, other = HumanAnnotatorFactory(), HumanAnnotatorFactory()
    held = assignment_reserve(campaign=campaign, annotator=slow)
    assert assignment_reserve(campaign=campaign, annotator=other) is None
    assert assignments_expire(now=timezone.now() + timedelta(minutes=9)) == 0
    assert assignments_expire(now=timezone.now() + timedelta(minutes=11)) == 1
    assert Assignment.objects.get(pk=held.pk).status == Assignment.Status.EXPIRED
    assert Pair.objects.get(pk=held.pair_id).slots_taken == 0
    again = assignment_reserve(campaign=campaign, annotator=other)
    assert again is not None and again.pair_id == held.pair_id


def test_skip_releases_the_slot_and_the_worker_never_gets_the_pair_again(aspects):
    campaign = campaign_with_pairs(1, humans_per_pair=1)
    worker = HumanAnnotatorFactory()
    held = assignment_reserve(campaign=campaign, annotator=worker)
    assignment_skip(assignment_id=held.pk, annotator=worker, reason="image_broken")
    assert Pair.objects.get(pk=held.pair_id).slots_taken == 0
    assert assignment_reserve(campaign=campaign, annotator=worker) is None
    assert assignment_reserve(campaign=campaign, annotator=HumanAnnotatorFactory()) is not None


def test_gold_pairs_are_mixed_in_at_the_gold_rate_and_not_limited_by_overlap(aspects):
    campaign = campaign_with_pairs(30, n_gold=3, humans_per_pair=1, gold_rate=1.0)
    for _ in range(4):
        worker = HumanAnnotatorFactory()
        kinds = [assignment_reserve(campaign=campaign, annotator=worker).pair.is_gold for _ in range(5)]
        assert kinds == [True, True, True, False, False]  # every gold pair once, then regular pairs
    none = campaign_with_pairs(10, n_gold=3, gold_rate=0.0, humans_per_pair=1)
    worker = HumanAnnotatorFactory()
    assert not any(assignment_reserve(campaign=none, annotator=worker).pair.is_gold for _ in range(5))


def test_queue_holds_the_pair_on_screen_and_a_preloaded_next_one_within_the_quota(aspects):
    campaign = campaign_with_pairs(10, humans_per_pair=1, worker_quota=3)
    worker = HumanAnnotatorFactory()
    link = campaign_worker_get(campaign=campaign, annotator=worker)
    queue = worker_queue_fill(campaign=campaign, annotator=worker, link=link)
    assert queue.current is not None and queue.lookahead is not None
    assert queue.current.shown_at is not None and queue.lookahead.shown_at is None
    again = worker_queue_fill(campaign=campaign, annotator=worker, link=link)
    assert (again.current.pk, again.lookahead.pk) == (queue.current.pk, queue.lookahead.pk)
    link.submitted = 2
    Assignment.objects.filter(pk=queue.current.pk).update(status=Assignment.Status.SUBMITTED)
    last = worker_queue_fill(campaign=campaign, annotator=worker, link=link)
    assert last.current.pk == queue.lookahead.pk and last.lookahead is None  # quota 3 = 2 done + 1 held


def test_blocked_workers_get_no_pairs(aspects):
    campaign = campaign_with_pairs(3)
    worker = HumanAnnotatorFactory(status=Annotator.Status.BLOCKED)
    link = campaign_worker_get(campaign=campaign, annotator=worker)
    assert worker_queue_fill(campaign=campaign, annotator=worker, link=link).current is None


def test_next_pair_query_uses_the_index_not_a_count(aspects, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    campaign = campaign_with_pairs(5)
    with CaptureQueriesContext(connection) as queries:
        assignment_reserve(campaign=campaign, annotator=HumanAnnotatorFactory())
    sql = " ".join(q["sql"] for q in queries.captured_queries).upper()
    assert "COUNT(" not in sql
    # Rows others hold are skipped, not waited for; SQLite has no row locks (its writes are serialised).
    assert ("SKIP LOCKED" in sql) == (connection.vendor == "postgresql")


def test_the_reservation_takes_the_path_of_its_database_and_a_lost_race_picks_again(aspects, monkeypatch):
    """PostgreSQL reserves in one statement; SQLite (the embedded default, `make pytest-sqlite`) in an ORM
    loop whose compare-and-set may lose a race and then picks again."""
    from django.db import connection

    from annotate.services import assignments

    statements: list[int] = []
    real_statement, real_take = assignments._reserve_one_statement, assignments.pair_slot_take
    monkeypatch.setattr(
        assignments, "_reserve_one_statement", lambda **kw: statements.append(1) or real_statement(**kw)
    )
    lost: list[int] = []

    def take_losing_once(*, pair_id, campaign_id):
        if not lost:
            lost.append(pair_id)
            return False  # another worker took the last slot first
        return real_take(pair_id=pair_id, campaign_id=campaign_id)

    monkeypatch.setattr(assignments, "pair_slot_take", take_losing_once)
    campaign = campaign_with_pairs(2, humans_per_pair=1)
    held = assignment_reserve(campaign=campaign, annotator=HumanAnnotatorFactory())
    assert held is not None and Pair.objects.get(pk=held.pair_id).slots_taken == 1
    if connection.vendor == "postgresql":
        assert statements == [1] and lost == []
    else:
        assert statements == [] and len(lost) == 1
        assert held.pair_id == lost[0]  # picked again, the pair was still free
        assert sum(campaign.pairs.values_list("slots_taken", flat=True)) == 1  # the lost race took nothing
