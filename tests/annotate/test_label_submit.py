"""Submitting judgments through the labeling screen: canonical storage, refusals, double submits, skips."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotate.models import Annotator, Assignment, Judgment, Pair
from annotate.services.assignments import assignments_expire
from annotate.services.campaigns import crowdworker_create
from annotate.services.judgments import canonical_choice
from tests.annotate.test_assign_engine import campaign_with_pairs

pytestmark = pytest.mark.django_db
KEYS = ["prompt_following", "aesthetic", "fidelity", "harmlessness"]


def login_worker(client, name="w1"):
    user = crowdworker_create(username=name, password="a-long-password-1")
    client.force_login(user)
    return user.annotator


def on_screen(client, campaign):
    response = client.get(reverse("annotate:label", args=[campaign.slug]))
    assert response.status_code == 200
    return response.context["assignment"]


def shown_id(response) -> int:
    """The assignment on screen, read from the form's submit URL (partials carry no test context)."""
    found = re.search(r"/label/(\d+)/submit", response.content.decode())
    assert found, response.content.decode()[:500]
    return int(found.group(1))


def answers(**overrides):
    data = {f"choice-{k}": "left" for k in KEYS}
    data.update(overrides)
    return data


def submit(client, campaign, assignment, data, htmx=True):
    url = reverse("annotate:label-submit", args=[campaign.slug, assignment.pk])
    return client.post(url, data, **({"HTTP_HX_REQUEST": "true"} if htmx else {}))


@pytest.mark.parametrize(
    ("side", "swapped", "expected"),
    [
        ("left", False, "A"),
        ("left", True, "B"),
        ("right", False, "B"),
        ("right", True, "A"),
        ("tie", True, "tie"),
    ],
)
def test_canonical_choice(side, swapped, expected):
    assert canonical_choice(side=side, swapped=swapped) == expected


def test_screen_shows_the_prompt_both_images_and_every_aspect(client, aspects):
    campaign = campaign_with_pairs(3)
    login_worker(client)
    response = client.get(reverse("annotate:label", args=[campaign.slug]))
    body = response.content.decode()
    assignment = response.context["assignment"]
    pair = assignment.pair
    left, right = (pair.image_b, pair.image_a) if assignment.swapped else (pair.image_a, pair.image_b)
    view = body[body.index('class="pair-view"') :]
    # The file names (their URLs carry a signed query string, escaped in the HTML).
    assert view.index(left.file.name) < view.index(right.file.name)
    assert pair.prompt.text in body and "Keyboard shortcuts" in body
    assert all(f'name="choice-{k}"' in body for k in KEYS)
    assert response.context["preload"]  # the next pair's images
    assert "is_gold" not in body and "gold" not in body.lower().replace("guidelines", "")


def test_submit_stores_canonical_judgments_and_swaps_in_the_next_pair(client, aspects):
    campaign = campaign_with_pairs(3)
    annotator = login_worker(client)
    first = on_screen(client, campaign)
    response = submit(
        client, campaign, first, answers(**{"choice-aesthetic": "right", "choice-fidelity": "tie"})
    )
    assert response.status_code == 200 and "<html" not in response.content.decode()
    assert shown_id(response) != first.pk
    stored = {
        j.aspect.key: (j.choice, j.presented_order) for j in Judgment.objects.filter(annotator=annotator)
    }
    left, right = ("B", "A") if first.swapped else ("A", "B")
    order = "BA" if first.swapped else "AB"
    assert stored == {
        "prompt_following": (left, order),
        "aesthetic": (right, order),
        "fidelity": ("tie", order),
        "harmlessness": (left, order),
    }
    assert Pair.objects.get(pk=first.pair_id).slots_submitted == 1


def test_double_submit_stores_exactly_one_set(client, aspects):
    campaign = campaign_with_pairs(3)
    annotator = login_worker(client)
    first = on_screen(client, campaign)
    assert submit(client, campaign, first, answers()).status_code == 200
    assert submit(client, campaign, first, answers(**{"choice-aesthetic": "right"})).status_code == 200
    assert Judgment.objects.filter(annotator=annotator).count() == 4
    assert set(Judgment.objects.filter(annotator=annotator).values_list("choice", flat=True)) == {
        "B" if first.swapped else "A"
    }
    assert Pair.objects.get(pk=first.pair_id).slots_submitted == 1


def test_submit_for_a_pair_not_reserved_to_you_is_refused_and_stores_nothing(client, aspects):
    campaign = campaign_with_pairs(3)
    login_worker(client, "owner")
    theirs = on_screen(client, campaign)
    client.logout()
    login_worker(client, "intruder")
    response = submit(client, campaign, theirs, answers())
    assert response.status_code == 404
    unknown = submit(client, campaign, Assignment(pk=999999), answers())
    assert unknown.status_code == 404
    assert Judgment.objects.count() == 0
    assert Assignment.objects.get(pk=theirs.pk).status == Assignment.Status.RESERVED


def test_incomplete_or_forbidden_answers_are_refused_with_422(client, aspects):
    campaign = campaign_with_pairs(3, allow_tie=False, rationale_required=True)
    login_worker(client)
    first = on_screen(client, campaign)
    missing = submit(client, campaign, first, {"choice-aesthetic": "left"})
    assert missing.status_code == 422 and "Choose left or right." in missing.content.decode()
    tie = answers(**{"choice-aesthetic": "tie"}, **{f"rationale-{k}": "because" for k in KEYS})
    tie_response = submit(client, campaign, first, tie)
    assert tie_response.status_code == 422 and "does not allow ties" in tie_response.content.decode()
    no_reason = submit(client, campaign, first, answers())
    assert no_reason.status_code == 422 and "short reason" in no_reason.content.decode()
    assert 'value="left" required checked' in no_reason.content.decode()  # answers are kept
    assert Judgment.objects.count() == 0
    ok = submit(client, campaign, first, answers(**{f"rationale-{k}": "clear" for k in KEYS}))
    assert ok.status_code == 200 and set(Judgment.objects.values_list("rationale", flat=True)) == {"clear"}


def test_late_submit_is_accepted_unless_the_pair_went_to_someone_else(client, aspects):
    campaign = campaign_with_pairs(1, humans_per_pair=1, reservation_minutes=10)
    login_worker(client, "slow")
    held = on_screen(client, campaign)
    assignments_expire(now=timezone.now() + timedelta(minutes=11))
    assert submit(client, campaign, held, answers()).status_code == 204  # HX-Redirect to the done page
    assert Judgment.objects.count() == 4

    other = campaign_with_pairs(1, humans_per_pair=1, reservation_minutes=10)
    held = on_screen(client, other)
    assignments_expire(now=timezone.now() + timedelta(minutes=11))
    client.logout()
    login_worker(client, "fast")
    on_screen(client, other)  # the freed pair goes to this worker
    client.logout()
    client.force_login(Annotator.objects.get(name="slow").user)
    response = submit(client, other, held, answers())
    assert response.status_code == 409 and "someone else" in response.content.decode()
    assert Judgment.objects.filter(pair__campaign=other).count() == 0


def test_submit_without_javascript_redirects_back_to_the_screen(client, aspects):
    campaign = campaign_with_pairs(3)
    login_worker(client)
    first = on_screen(client, campaign)
    response = submit(client, campaign, first, answers(), htmx=False)
    assert response.status_code == 302 and response.url == reverse("annotate:label", args=[campaign.slug])


def test_skip_with_reason_shows_the_next_pair(client, aspects):
    campaign = campaign_with_pairs(3)
    login_worker(client)
    first = on_screen(client, campaign)
    url = reverse("annotate:label-skip", args=[campaign.slug, first.pk])
    assert client.post(url, {"reason": "nonsense"}, HTTP_HX_REQUEST="true").status_code == 400
    response = client.post(url, {"reason": "offensive"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and shown_id(response) != first.pk
    skipped = Assignment.objects.get(pk=first.pk)
    assert skipped.status == Assignment.Status.SKIPPED and skipped.skip_reason == "offensive"
    assert Judgment.objects.count() == 0


def test_workers_cannot_post_without_csrf_token(aspects):
    from django.test import Client

    campaign = campaign_with_pairs(2)
    client = Client(enforce_csrf_checks=True)
    login_worker(client)
    first = on_screen(client, campaign)
    assert submit(client, campaign, first, answers()).status_code == 403
    assert Judgment.objects.count() == 0


@pytest.mark.skipif("os.environ.get('DATABASE_URL', '').startswith('sqlite')", reason="PostgreSQL statements")
def test_a_labeling_cycle_takes_few_database_round_trips(client, aspects, settings):
    """Next pair: user with annotator, enrolment, held pairs. Submit: user, one statement storing the set,
    held pairs, marking the next pair shown, one statement reserving a fresh pair with its images."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"  # as in production
    campaign = campaign_with_pairs(20)
    login_worker(client)
    client.get(reverse("annotate:label", args=[campaign.slug]))  # enrolment and the first two reservations

    def round_trips(queries):  # savepoints exist only because each test runs inside a transaction
        return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]

    with CaptureQueriesContext(connection) as next_queries:
        response = client.get(reverse("annotate:label", args=[campaign.slug]), HTTP_HX_REQUEST="true")
    with CaptureQueriesContext(connection) as submit_queries:
        url = reverse("annotate:label-submit", args=[campaign.slug, shown_id(response)])
        assert client.post(url, answers(), HTTP_HX_REQUEST="true").status_code == 200
    assert len(round_trips(next_queries)) <= 3, round_trips(next_queries)
    assert len(round_trips(submit_queries)) <= 5, round_trips(submit_queries)


def test_submit_counts_a_worker_who_has_no_enrolment_row_yet(aspects):
    from annotate.models import CampaignWorker
    from annotate.services.assignments import assignment_reserve
    from annotate.services.judgments import judgment_submit
    from tests.factories import HumanAnnotatorFactory

    campaign = campaign_with_pairs(2)
    worker = HumanAnnotatorFactory()
    assignment = assignment_reserve(campaign=campaign, annotator=worker)
    judgment_submit(
        campaign=campaign,
        aspects=list(campaign.aspects.order_by("order", "key")),
        assignment_id=assignment.pk,
        annotator=worker,
        choices={k: "right" for k in KEYS},
        rationales={"aesthetic": "  warmer light  "},
    )
    link = CampaignWorker.objects.get(campaign=campaign, annotator=worker)
    assert link.submitted == 1
    stored = Judgment.objects.get(assignment=assignment, aspect__key="aesthetic")
    assert stored.rationale == "warmer light"
    assert stored.choice == canonical_choice(side="right", swapped=assignment.swapped)
    assert stored.presented_order == ("BA" if assignment.swapped else "AB")
