"""Invite-only campaigns: members see and label them, nobody else does; invitations by email and accounts in
bulk; removing a member hands their pairs back."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from annotate.models import Assignment, CampaignWorker, Pair
from annotate.services.campaigns import crowdworker_create
from annotate.services.members import campaign_member_add
from tests.annotate.test_assign_engine import campaign_with_pairs
from tests.annotate.test_label_submit import answers, shown_id
from tests.factories import AdminFactory

pytestmark = pytest.mark.django_db
PID = "5f1e2d3c4b5a69788796a5b4"


@pytest.fixture
def team(aspects):
    """An invite-only campaign with one member, and an open campaign."""
    closed = campaign_with_pairs(4, name="In-house study", access="invite")
    open_one = campaign_with_pairs(4, name="Open study")
    member = crowdworker_create(username="member", password="a-long-password-1")
    outsider = crowdworker_create(username="outsider", password="a-long-password-2")
    campaign_member_add(campaign=closed, user=member)
    return {"closed": closed, "open": open_one, "member": member, "outsider": outsider}


def test_members_see_and_label_an_invite_only_campaign_and_outsiders_do_not(client, team):
    closed = team["closed"]
    client.force_login(team["outsider"])
    home = client.get(reverse("annotate:home")).content.decode()
    assert "Open study" in home and "In-house study" not in home
    refused = client.get(reverse("annotate:label", args=[closed.slug]))
    assert refused.status_code == 403 and "invited members only" in refused.content.decode()
    assert client.get(reverse("annotate:label-done", args=[closed.slug])).status_code == 403
    assert not Assignment.objects.filter(campaign=closed).exists()
    assert not CampaignWorker.objects.filter(campaign=closed, annotator=team["outsider"].annotator).exists()

    client.force_login(team["member"])
    assert "In-house study" in client.get(reverse("annotate:home")).content.decode()
    page = client.get(reverse("annotate:label", args=[closed.slug]), HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    url = reverse("annotate:label-submit", args=[closed.slug, shown_id(page)])
    assert client.post(url, answers(), HTTP_HX_REQUEST="true").status_code == 200


def test_the_crowd_link_of_an_invite_only_campaign_is_refused(client, team):
    response = client.get(reverse("annotate:crowd-start", args=[team["closed"].slug]), {"PROLIFIC_PID": PID})
    assert response.status_code == 403 and "invited members only" in response.content.decode()
    assert not get_user_model().objects.filter(username__contains=PID).exists()
    opened = client.get(reverse("annotate:crowd-start", args=[team["open"].slug]), {"PROLIFIC_PID": PID})
    assert opened.status_code == 302  # crowd-link campaigns stay open to their link


def test_admins_invite_by_email_and_the_link_sets_a_password_once(client, team):
    closed = team["closed"]
    client.force_login(AdminFactory())
    response = client.post(
        reverse("annotate:campaign-members-invite", args=[closed.slug]),
        {"emails": "Ana@Lab.org, ben@lab.org\nmember-mail@lab.org"},
    )
    assert response.status_code == 200
    user = get_user_model().objects.get(email="ana@lab.org")
    assert not user.has_usable_password() and user.groups.filter(name="crowdworkers").exists()
    assert CampaignWorker.objects.get(campaign=closed, annotator=user.annotator).invited_at is not None
    assert len(mail.outbox) == 3 and "In-house study" in mail.outbox[0].subject
    link = re.search(r"https?://\S+/invite/\S+/", mail.outbox[0].body).group(0)
    assert link in response.content.decode()  # shown to copy as well
    client.logout()
    path = link.split("testserver", 1)[1]
    form = client.get(path)
    assert form.status_code == 200 and "ana@lab.org" in form.content.decode()
    done = client.post(path, {"new_password1": "Sunny-orchard-42", "new_password2": "Sunny-orchard-42"})
    assert done.status_code == 302 and done.url == reverse("annotate:home")
    assert "In-house study" in client.get(reverse("annotate:home")).content.decode()
    user.refresh_from_db()
    assert user.check_password("Sunny-orchard-42")
    client.logout()
    assert client.get(path).status_code == 404  # the token died with the new password


def test_bad_addresses_are_named_and_nothing_is_created(client, team):
    client.force_login(AdminFactory())
    response = client.post(
        reverse("annotate:campaign-members-invite", args=[team["closed"].slug]), {"emails": "ok@lab.org nope"}
    )
    assert response.status_code == 422 and "Not email addresses: nope" in response.content.decode()
    assert not get_user_model().objects.filter(email="ok@lab.org").exists()


def test_accounts_made_in_bulk_show_their_passwords_once_and_can_sign_in(client, team):
    closed = team["closed"]
    client.force_login(AdminFactory())
    response = client.post(
        reverse("annotate:campaign-members-bulk", args=[closed.slug]),
        {"usernames": "member\n", "name_prefix": "rater", "count": "2"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    passwords = dict(re.findall(r"^(rater-\d\d),([\w-]+),", body, flags=re.M))
    assert set(passwords) == {"rater-01", "rater-02"}
    assert "member,(existing account: unchanged)" in body
    assert client.login(username="rater-02", password=passwords["rater-02"])
    assert "In-house study" in client.get(reverse("annotate:home")).content.decode()


def test_removing_a_member_hands_their_reserved_pairs_back(client, team):
    closed = team["closed"]
    client.force_login(team["member"])
    client.get(reverse("annotate:label", args=[closed.slug]))
    held = Assignment.objects.filter(campaign=closed, status="reserved")
    assert held.count() == 2
    client.force_login(AdminFactory())
    annotator = team["member"].annotator
    response = client.post(reverse("annotate:campaign-member-remove", args=[closed.slug, annotator.pk]))
    assert response.status_code == 302
    assert not Assignment.objects.filter(campaign=closed, status="reserved").exists()
    assert sum(Pair.objects.filter(campaign=closed).values_list("slots_taken", flat=True)) == 0
    client.force_login(team["member"])
    assert client.get(reverse("annotate:label", args=[closed.slug])).status_code == 403


def test_closed_paused_and_missing_campaigns_get_friendly_pages(client, aspects):
    campaign = campaign_with_pairs(2, status="closed")
    client.force_login(crowdworker_create(username="late", password="a-long-password-3"))
    response = client.get(reverse("annotate:label", args=[campaign.slug]), follow=True)
    assert response.status_code == 403 and "This campaign has closed" in response.content.decode()
    paused = campaign_with_pairs(2, status="paused")
    body = client.get(reverse("annotate:label-done", args=[paused.slug])).content.decode()
    assert "paused" in body
    missing = client.get("/c/no-such-campaign/label/")
    assert missing.status_code == 404 and "We could not find that page" in missing.content.decode()
    staff_only = client.get(reverse("core:job-list"))
    assert staff_only.status_code == 403 and "not for this account" in staff_only.content.decode()
