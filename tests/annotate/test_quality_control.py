"""Quality control: gold accuracy, too-fast flags, automatic and manual worker status, report filtering."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import Annotator, Assignment, CampaignWorker, Pair
from annotate.selectors import judgments_for_reports
from annotate.services.assignments import AssignmentError, assignment_reserve
from annotate.services.judgments import annotator_status_set, judgment_submit
from annotate.services.pairs import gold_answers_validate, pair_gold_set
from tests.annotate.test_assign_engine import campaign_with_pairs
from tests.factories import AIAnnotatorFactory, HumanAnnotatorFactory, JudgmentFactory

pytestmark = pytest.mark.django_db


def label(campaign, worker, *, side="left", seconds=10.0):
    """Reserve the next pair for the worker and answer every aspect with one side, after `seconds`."""
    assignment = assignment_reserve(campaign=campaign, annotator=worker)
    assert assignment is not None
    shown = timezone.now()
    Assignment.objects.filter(pk=assignment.pk).update(shown_at=shown)
    aspects = list(campaign.aspects.order_by("order"))
    sides = {}
    for aspect in aspects:
        expected = assignment.pair.gold_answers.get(aspect.key)
        if side == "gold" and expected:
            want_left = expected == ("B" if assignment.swapped else "A")
            sides[aspect.key] = "left" if want_left else "right"
        elif side == "anti-gold" and expected:
            want_left = expected == ("B" if assignment.swapped else "A")
            sides[aspect.key] = "right" if want_left else "left"
        else:
            sides[aspect.key] = "left"
    judgment_submit(
        campaign=campaign,
        aspects=aspects,
        assignment_id=assignment.pk,
        annotator=worker,
        choices=sides,
        rationales={},
        now=shown + timedelta(seconds=seconds),
    )
    return Assignment.objects.get(pk=assignment.pk)


def test_gold_accuracy_is_tracked_per_worker(aspects):
    campaign = campaign_with_pairs(10, n_gold=4, gold_rate=1.0, min_gold_for_status=10)
    good, bad = HumanAnnotatorFactory(), HumanAnnotatorFactory()
    for _ in range(4):
        label(campaign, good, side="gold")
        label(campaign, bad, side="anti-gold")
    assert CampaignWorker.objects.get(annotator=good).gold_accuracy == 1.0
    assert CampaignWorker.objects.get(annotator=bad).gold_accuracy == 0.0
    assert CampaignWorker.objects.get(annotator=bad).gold_pairs == 4


def test_low_gold_accuracy_flags_then_blocks_automatically(aspects):
    campaign = campaign_with_pairs(
        10,
        n_gold=6,
        gold_rate=1.0,
        min_gold_for_status=2,
        flag_gold_accuracy_below=0.8,
        block_gold_accuracy_below=0.4,
    )
    worker = HumanAnnotatorFactory()
    label(campaign, worker, side="gold")
    label(campaign, worker, side="anti-gold")
    worker.refresh_from_db()
    assert worker.status == Annotator.Status.FLAGGED and "Gold accuracy 50%" in worker.status_reason
    label(campaign, worker, side="anti-gold")  # 1 of 3 right: below the blocking threshold
    worker.refresh_from_db()
    assert worker.status == Annotator.Status.BLOCKED
    with pytest.raises(AssignmentError):
        label(campaign, worker, side="gold")  # a blocked worker's submission is refused
    from annotate.services.assignments import campaign_worker_get, worker_queue_fill

    link = campaign_worker_get(campaign=campaign, annotator=worker)
    assert worker_queue_fill(campaign=campaign, annotator=worker, link=link).current is None


def test_too_fast_submissions_are_flagged_and_many_flag_the_worker(aspects):
    campaign = campaign_with_pairs(20, min_seconds_per_pair=3.0, flag_too_fast_share=0.3)
    worker = HumanAnnotatorFactory()
    assert label(campaign, worker, seconds=5).too_fast is False
    assert label(campaign, worker, seconds=1).too_fast is True
    for _ in range(8):
        label(campaign, worker, seconds=1)
    worker.refresh_from_db()
    link = CampaignWorker.objects.get(annotator=worker)
    assert link.too_fast == 9 and link.submitted == 10
    assert worker.status == Annotator.Status.FLAGGED and "faster than 3 s" in worker.status_reason


def test_admin_status_overrides_the_thresholds_until_handed_back(aspects):
    campaign = campaign_with_pairs(20, min_seconds_per_pair=3.0, flag_too_fast_share=0.1)
    worker = HumanAnnotatorFactory()
    annotator_status_set(annotator=worker, status=Annotator.Status.ACTIVE, reason="Known fast expert")
    for _ in range(10):
        label(campaign, worker, seconds=1)
    worker.refresh_from_db()
    assert worker.status == Annotator.Status.ACTIVE and worker.status_set_by_admin
    annotator_status_set(annotator=worker, status="auto")
    label(campaign, worker, seconds=1)
    worker.refresh_from_db()
    assert worker.status == Annotator.Status.FLAGGED
    with pytest.raises(ValueError):
        annotator_status_set(annotator=worker, status="banished")


def test_reports_leave_out_flagged_and_blocked_workers_unless_asked(aspects):
    campaign = campaign_with_pairs(3)
    pair = campaign.pairs.first()
    active, flagged = HumanAnnotatorFactory(), HumanAnnotatorFactory(status=Annotator.Status.FLAGGED)
    ai = AIAnnotatorFactory()
    for annotator in (active, flagged, ai):
        JudgmentFactory(pair=pair, annotator=annotator, aspect=aspects[0])
    default = set(judgments_for_reports(campaign=campaign).values_list("annotator_id", flat=True))
    assert default == {active.pk, ai.pk}
    everyone = set(
        judgments_for_reports(campaign=campaign, include_flagged=True).values_list("annotator_id", flat=True)
    )
    assert everyone == {active.pk, flagged.pk, ai.pk}


def test_gold_answers_are_validated(aspects):
    campaign = campaign_with_pairs(2)
    pair = campaign.pairs.first()
    with pytest.raises(ValueError, match="Not aspects"):
        gold_answers_validate(campaign=campaign, answers={"smell": "A"})
    with pytest.raises(ValueError, match="A, B or tie"):
        gold_answers_validate(campaign=campaign, answers={"aesthetic": "left"})
    pair_gold_set(pair=pair, answers={"aesthetic": "B"})
    assert Pair.objects.get(pk=pair.pk).is_gold
    pair_gold_set(pair=pair, answers=None)
    assert not Pair.objects.get(pk=pair.pk).is_gold
