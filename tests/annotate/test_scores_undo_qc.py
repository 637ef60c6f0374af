"""Labeling additions: per-image scores (canonical storage, validation), undo of the last submission, and
speed flags that work with a small quota (min submissions before flagging is a campaign setting)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotate.models import Annotator, Assignment, CampaignWorker, Judgment, Pair
from annotate.services.assignments import (
    AssignmentError,
    assignment_reserve,
    assignments_expire,
    worker_queue_fill,
)
from annotate.services.judgments import judgment_submit, judgment_undo
from tests.annotate.test_assign_engine import campaign_with_pairs
from tests.annotate.test_label_submit import KEYS, answers, login_worker, shown_id
from tests.annotate.test_quality_control import label
from tests.factories import HumanAnnotatorFactory

pytestmark = pytest.mark.django_db


def scores(left: int, right: int) -> dict[str, str]:
    data = {}
    for key in KEYS:
        data[f"score-left-{key}"], data[f"score-right-{key}"] = str(left), str(right)
    return data


def test_per_image_scores_are_stored_in_canonical_terms(client, aspects):
    campaign = campaign_with_pairs(6, human_scores=True, score_min=1, score_max=5)
    worker = login_worker(client)
    seen = {False: 0, True: 0}
    for _ in range(6):
        page = client.get(reverse("annotate:label", args=[campaign.slug]), HTTP_HX_REQUEST="true")
        assert 'name="score-left-fidelity"' in page.content.decode()
        assignment = Assignment.objects.get(pk=shown_id(page))
        url = reverse("annotate:label-submit", args=[campaign.slug, assignment.pk])
        # 200: the next pair; 204 with HX-Redirect: the last one, on to the completion page.
        assert client.post(url, {**answers(), **scores(5, 2)}, HTTP_HX_REQUEST="true").status_code in (
            200,
            204,
        )
        seen[assignment.swapped] += 1
        for judgment in Judgment.objects.filter(assignment=assignment):
            # The left image scored 5: that is image B when B was shown on the left.
            expected = (2.0, 5.0) if assignment.swapped else (5.0, 2.0)
            assert (judgment.score_a, judgment.score_b) == expected
            assert judgment.choice == ("B" if assignment.swapped else "A")
    assert Judgment.objects.filter(annotator=worker).count() == 24


def test_scores_take_the_general_path_too(aspects):
    """An expired reservation whose slot is still free is accepted by the ORM path, with the same scores."""
    campaign = campaign_with_pairs(3, human_scores=True, score_min=0, score_max=9)
    worker = HumanAnnotatorFactory()
    link = CampaignWorker.objects.create(campaign=campaign, annotator=worker)
    current = worker_queue_fill(campaign=campaign, annotator=worker, link=link).current
    Assignment.objects.filter(pk=current.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assignments_expire()
    judgment_submit(
        campaign=campaign,
        aspects=list(campaign.aspects.order_by("order")),
        assignment_id=current.pk,
        annotator=worker,
        choices={k: "right" for k in KEYS},
        rationales={},
        scores={k: ("0", "9") for k in KEYS},
    )
    stored = Judgment.objects.get(assignment=current, aspect__key="aesthetic")
    assert (stored.score_a, stored.score_b) == ((9.0, 0.0) if current.swapped else (0.0, 9.0))


@pytest.mark.parametrize("bad", [("", "3"), ("6", "3"), ("x", "2"), ("0", "1")])
def test_missing_or_out_of_range_scores_are_refused_next_to_the_aspect(client, aspects, bad):
    campaign = campaign_with_pairs(2, human_scores=True, score_min=1, score_max=5)
    login_worker(client)
    page = client.get(reverse("annotate:label", args=[campaign.slug]), HTTP_HX_REQUEST="true")
    data = {**answers(), **scores(3, 3), "score-left-fidelity": bad[0], "score-right-fidelity": bad[1]}
    url = reverse("annotate:label-submit", args=[campaign.slug, shown_id(page)])
    response = client.post(url, data, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "Score both images from 1 to 5." in response.content.decode()
    assert not Judgment.objects.exists()


def test_campaigns_without_scores_store_none(client, aspects):
    campaign = campaign_with_pairs(2)
    login_worker(client)
    page = client.get(reverse("annotate:label", args=[campaign.slug]), HTTP_HX_REQUEST="true")
    assert "score-left" not in page.content.decode()
    url = reverse("annotate:label-submit", args=[campaign.slug, shown_id(page)])
    client.post(url, {**answers(), **scores(9, 9)}, HTTP_HX_REQUEST="true")
    assert set(Judgment.objects.values_list("score_a", "score_b")) == {(None, None)}


def test_undo_gives_the_pair_back_with_the_answers_and_every_counter_moved_back(client, aspects):
    campaign = campaign_with_pairs(6, humans_per_pair=2, human_scores=True, score_min=1, score_max=5)
    worker = login_worker(client)
    first = shown_id(client.get(reverse("annotate:label", args=[campaign.slug]), HTTP_HX_REQUEST="true"))
    url = reverse("annotate:label-submit", args=[campaign.slug, first])
    data = {**answers(**{"choice-aesthetic": "tie"}), **scores(4, 1), "rationale-fidelity": "left is sharper"}
    after = client.post(url, data, HTTP_HX_REQUEST="true").content.decode()
    undo_url = reverse("annotate:label-undo", args=[campaign.slug, first])
    assert undo_url in after  # offered while the pair still needs another human
    pair = Assignment.objects.get(pk=first).pair
    assert Pair.objects.get(pk=pair.pk).slots_submitted == 1
    held_before = set(
        Assignment.objects.filter(annotator=worker, status="reserved").values_list("pk", flat=True)
    )
    assert len(held_before) == 2

    response = client.post(undo_url, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and shown_id(response) == first
    assert "Your last answer is back" in body
    assert 'value="tie" checked' in body and "left is sharper" in body and 'value="4"' in body
    assert not Judgment.objects.filter(assignment_id=first).exists()
    assignment = Assignment.objects.get(pk=first)
    assert assignment.status == Assignment.Status.RESERVED and assignment.submitted_at is None
    assert Pair.objects.get(pk=pair.pk).slots_submitted == 0
    link = CampaignWorker.objects.get(campaign=campaign, annotator=worker)
    assert (link.submitted, link.too_fast) == (0, 0)
    held = Assignment.objects.filter(annotator=worker, status="reserved")
    assert held.count() == 2 and first in set(held.values_list("pk", flat=True))  # the extra one went back

    again = client.post(url, {**data, **scores(2, 2)}, HTTP_HX_REQUEST="true")
    assert again.status_code == 200
    assert set(Judgment.objects.filter(assignment_id=first).values_list("score_a", "score_b")) <= {(2.0, 2.0)}


def test_only_the_last_submission_of_an_incomplete_pair_can_be_undone(aspects):
    campaign = campaign_with_pairs(6, humans_per_pair=2)
    worker, other = HumanAnnotatorFactory(), HumanAnnotatorFactory()
    first = label(campaign, worker)
    second = label(campaign, worker)
    with pytest.raises(AssignmentError, match="Only your last submission"):
        judgment_undo(campaign=campaign, annotator=worker, assignment_id=first.pk)
    with pytest.raises(AssignmentError, match="no submission of yours"):
        judgment_undo(campaign=campaign, annotator=other, assignment_id=second.pk)
    # Another worker completes the pair (they get the pairs closest to completion first): final now.
    label(campaign, other)
    label(campaign, other)
    assert Pair.objects.get(pk=second.pair_id).slots_submitted == 2
    with pytest.raises(AssignmentError, match="can no longer be undone"):
        judgment_undo(campaign=campaign, annotator=worker, assignment_id=second.pk)


def test_undo_of_a_too_fast_submission_gives_back_the_flag(aspects):
    campaign = campaign_with_pairs(8, min_submissions_for_flag=2, flag_too_fast_share=0.4)
    worker = HumanAnnotatorFactory()
    aspects_in_order = list(campaign.aspects.order_by("order"))
    clock = timezone.now()
    done = []
    for seconds in (10.0, 1.0):  # a careful submission, then a too-fast one
        assignment = assignment_reserve(campaign=campaign, annotator=worker)
        Assignment.objects.filter(pk=assignment.pk).update(shown_at=clock)
        clock += timedelta(seconds=seconds)
        judgment_submit(
            campaign=campaign,
            aspects=aspects_in_order,
            assignment_id=assignment.pk,
            annotator=worker,
            choices={k: "left" for k in KEYS},
            rationales={},
            now=clock,
        )
        done.append(assignment)
    worker.refresh_from_db()
    assert worker.status == Annotator.Status.FLAGGED  # 1 of 2 too fast: 50% > 40%
    judgment_undo(campaign=campaign, annotator=worker, assignment_id=done[-1].pk)
    worker.refresh_from_db()
    link = CampaignWorker.objects.get(annotator=worker)
    assert (link.submitted, link.too_fast) == (1, 0) and worker.status == Annotator.Status.ACTIVE


def test_a_fast_worker_is_flagged_within_a_small_quota(aspects):
    campaign = campaign_with_pairs(10, worker_quota=4, min_submissions_for_flag=4, flag_too_fast_share=0.5)
    careful, fast = HumanAnnotatorFactory(), HumanAnnotatorFactory()
    for seconds in (1, 1, 1, 8):
        label(campaign, fast, seconds=seconds)
        label(campaign, careful, seconds=8)
    fast.refresh_from_db()
    careful.refresh_from_db()
    assert fast.status == Annotator.Status.FLAGGED and "75% of submissions" in fast.status_reason
    assert careful.status == Annotator.Status.ACTIVE


def test_the_speed_check_waits_for_the_campaigns_minimum(aspects):
    campaign = campaign_with_pairs(10, min_submissions_for_flag=4, flag_too_fast_share=0.5)
    worker = HumanAnnotatorFactory()
    for _ in range(3):
        label(campaign, worker, seconds=1)
    worker.refresh_from_db()
    assert worker.status == Annotator.Status.ACTIVE  # 3 of 3 too fast, but fewer than 4 submissions
    label(campaign, worker, seconds=1)
    worker.refresh_from_db()
    assert worker.status == Annotator.Status.FLAGGED
