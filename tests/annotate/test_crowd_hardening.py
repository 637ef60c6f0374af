"""Crowd entry under abuse: full-match ids, new participants limited per address, an admin's session kept,
skips never counting toward the completion code (Campaign.min_labeled_pairs)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from annotate.models import Annotator, Assignment
from tests.annotate.test_assign_engine import campaign_with_pairs
from tests.factories import AdminFactory

pytestmark = pytest.mark.django_db
PID = "5f1e2d3c4b5a69788796a5b4"
ALL_LEFT = {f"choice-{k}": "left" for k in ["prompt_following", "aesthetic", "fidelity", "harmlessness"]}


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    yield
    cache.clear()


def start_url(campaign, query: str) -> str:
    return reverse("annotate:crowd-start", args=[campaign.slug]) + "?" + query


@pytest.mark.parametrize(
    "query",
    [
        f"PROLIFIC_PID={PID}%0A",
        f"PROLIFIC_PID={PID}&STUDY_ID=60aabbccddeeff0011223344%0A",
        "workerId=A1B2C3D4E5F6G7%0A",
        "workerId=A1B2C3D4E5F6G7&hitId=3PMBY0YE272ZWNIVEJ84Y1JNVO39CE%0A",
    ],
)
def test_an_id_with_a_trailing_newline_is_refused_and_creates_no_second_account(client, aspects, query):
    campaign = campaign_with_pairs(2)
    response = client.get(start_url(campaign, query))
    assert response.status_code == 400
    assert not Annotator.objects.filter(kind="human").exists()


def test_new_participants_from_one_address_are_limited(client, aspects, settings):
    settings.CROWD_FREE_NEW_WORKERS_PER_ADDRESS = 5
    campaign = campaign_with_pairs(3)
    codes = []
    for i in range(12):
        client.cookies.clear()
        codes.append(
            client.get(start_url(campaign, f"PROLIFIC_PID={i:024x}"), REMOTE_ADDR="198.51.100.7").status_code
        )
    assert codes[:5] == [302] * 5 and set(codes[5:]) == {429}
    assert Annotator.objects.filter(platform="prolific").count() == 5
    limited = client.get(start_url(campaign, f"PROLIFIC_PID={99:024x}"), REMOTE_ADDR="198.51.100.7")
    assert int(limited["Retry-After"]) >= 1 and "open the link again in" in limited.content.decode()
    # A returning participant is not new; another address has its own count.
    client.cookies.clear()
    assert (
        client.get(start_url(campaign, f"PROLIFIC_PID={0:024x}"), REMOTE_ADDR="198.51.100.7").status_code
        == 302
    )
    client.cookies.clear()
    assert (
        client.get(start_url(campaign, f"PROLIFIC_PID={50:024x}"), REMOTE_ADDR="203.0.113.9").status_code
        == 302
    )


def test_a_crowd_link_does_not_silently_replace_an_admin_session(client, aspects):
    admin = AdminFactory(username="root")
    client.force_login(admin)
    campaign = campaign_with_pairs(3)
    url = start_url(campaign, f"PROLIFIC_PID={PID}")
    page = client.get(url)
    body = page.content.decode()
    assert page.status_code == 200 and "You are signed in as root" in body
    assert client.session["_auth_user_id"] == str(admin.pk)
    assert not Annotator.objects.filter(platform="prolific").exists()
    # Staying is a link home; going on is a POST of the page's form.
    assert reverse("annotate:home") in body and 'name="switch"' in body
    switched = client.post(url, {"switch": "1"})
    assert switched.status_code == 302 and switched.url == reverse("annotate:label", args=[campaign.slug])
    assert client.session["_auth_user_id"] == str(Annotator.objects.get(external_id=PID).user_id)


def test_the_switch_needs_a_csrf_token(aspects):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(AdminFactory(username="root"))
    campaign = campaign_with_pairs(3)
    assert client.post(start_url(campaign, f"PROLIFIC_PID={PID}"), {"switch": "1"}).status_code == 403


def _label_one(client, campaign) -> None:
    assignment = client.get(reverse("annotate:label", args=[campaign.slug])).context["assignment"]
    client.post(reverse("annotate:label-submit", args=[campaign.slug, assignment.pk]), ALL_LEFT)


def _skip_until_done(client, campaign) -> None:
    for _ in range(50):
        page = client.get(reverse("annotate:label", args=[campaign.slug]))
        if page.status_code != 200:
            return
        assignment = page.context["assignment"]
        client.post(
            reverse("annotate:label-skip", args=[campaign.slug, assignment.pk]), {"reason": "prompt_unclear"}
        )


def test_skipping_the_rest_of_the_quota_does_not_earn_the_code(client, aspects):
    campaign = campaign_with_pairs(5, humans_per_pair=1, worker_quota=3, completion_code="C0DE-42")
    client.get(start_url(campaign, f"PROLIFIC_PID={PID}"))
    _label_one(client, campaign)
    _skip_until_done(client, campaign)
    annotator = Annotator.objects.get(external_id=PID)
    assert Assignment.objects.filter(annotator=annotator, status="skipped").count() == 4
    done = client.get(reverse("annotate:label-done", args=[campaign.slug]))
    body = done.content.decode()
    assert "C0DE-42" not in body and "needs 3 labeled pairs" in body


def test_a_campaign_may_accept_fewer_labeled_pairs(client, aspects):
    campaign = campaign_with_pairs(
        5, humans_per_pair=1, worker_quota=3, min_labeled_pairs=1, completion_code="C0DE-42"
    )
    client.get(start_url(campaign, f"PROLIFIC_PID={PID}"))
    _label_one(client, campaign)
    _skip_until_done(client, campaign)
    assert "C0DE-42" in client.get(reverse("annotate:label-done", args=[campaign.slug])).content.decode()


def test_skips_do_not_use_up_the_quota(client, aspects):
    campaign = campaign_with_pairs(6, humans_per_pair=1, worker_quota=2, completion_code="C0DE-42")
    client.get(start_url(campaign, f"PROLIFIC_PID={PID}"))
    for _ in range(3):
        page = client.get(reverse("annotate:label", args=[campaign.slug]))
        client.post(
            reverse("annotate:label-skip", args=[campaign.slug, page.context["assignment"].pk]),
            {"reason": "image_broken"},
        )
    _label_one(client, campaign)
    _label_one(client, campaign)
    done = client.get(reverse("annotate:label-done", args=[campaign.slug]), follow=True)
    assert "C0DE-42" in done.content.decode() and "all 2 pairs" in done.content.decode()


def test_fewer_labels_earn_the_code_when_no_pair_is_left(client, aspects):
    from django.test import Client

    campaign = campaign_with_pairs(2, humans_per_pair=1, worker_quota=5, completion_code="C0DE-42")
    client.get(start_url(campaign, f"PROLIFIC_PID={PID}"))
    page = client.get(reverse("annotate:label", args=[campaign.slug]))  # reserves both pairs
    first = page.context["assignment"]
    client.post(reverse("annotate:label-submit", args=[campaign.slug, first.pk]), ALL_LEFT)
    second = client.get(reverse("annotate:label", args=[campaign.slug])).context["assignment"]
    client.post(reverse("annotate:label-skip", args=[campaign.slug, second.pk]), {"reason": "image_broken"})
    assert "C0DE-42" not in client.get(reverse("annotate:label-done", args=[campaign.slug])).content.decode()
    other = Client()
    other.get(start_url(campaign, "workerId=A1B2C3D4E5F6G7"))
    _label_one(other, campaign)  # someone else labels the skipped pair: nothing is left in the campaign
    assert "C0DE-42" in client.get(reverse("annotate:label-done", args=[campaign.slug])).content.decode()
