"""The admin campaign page's live progress and worker controls, and the rate-limited login."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from annotate.models import Annotator
from annotate.services.campaigns import crowdworker_create
from tests.annotate.test_assign_engine import campaign_with_pairs
from tests.annotate.test_label_submit import answers, on_screen, submit
from tests.factories import AdminFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_campaign_page_shows_live_progress_and_the_worker_table(client, aspects):
    campaign = campaign_with_pairs(4, humans_per_pair=1)
    worker = crowdworker_create(username="w-live", password="a-long-password-1")
    client.force_login(worker)
    submit(client, campaign, on_screen(client, campaign), answers())
    cache.clear()
    client.force_login(AdminFactory())
    page = client.get(reverse("annotate:campaign-detail", args=[campaign.slug]))
    body = page.content.decode()
    assert 'hx-trigger="every 5s"' in body and "<html" in body and "w-live" in body
    progress = page.context["progress"]
    # one submitted; the worker now holds the pair on screen and the preloaded next one
    assert (progress["complete"], progress["in_progress"], progress["untouched"]) == (1, 2, 1)
    assert progress["per_hour"] == 1 and progress["active_workers"] == 1
    partial = client.get(
        reverse("annotate:campaign-detail", args=[campaign.slug]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in partial and 'id="campaign-live"' in partial and "w-live" in partial


def test_admin_sets_worker_status_by_hand(client, aspects):
    campaign = campaign_with_pairs(2)
    worker = crowdworker_create(username="w-status", password="a-long-password-1")
    client.force_login(worker)
    on_screen(client, campaign)
    url = reverse("annotate:campaign-worker-status", args=[campaign.slug, worker.annotator.pk])
    assert client.post(url, {"status": "blocked"}).status_code == 403  # workers cannot
    client.force_login(AdminFactory())
    response = client.post(url, {"status": "blocked"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "by admin" in response.content.decode()
    annotator = Annotator.objects.get(pk=worker.annotator.pk)
    assert annotator.status == "blocked" and annotator.status_set_by_admin
    assert client.post(url, {"status": "nonsense"}).status_code == 400


def test_login_is_rate_limited_per_ip_and_username(client):
    cache.clear()
    UserFactory(username="victim")
    for _ in range(5):
        response = client.post(reverse("annotate:login"), {"username": "victim", "password": "wrong"})
        assert response.status_code == 200
    locked = client.post(reverse("annotate:login"), {"username": "victim", "password": "pw-for-tests-1"})
    assert locked.status_code == 429 and "Too many sign-in attempts" in locked.content.decode()
    other = client.post(reverse("annotate:login"), {"username": "someone-else", "password": "wrong"})
    assert other.status_code == 200  # the limit is per username (and a looser one per address)
    cache.clear()
    ok = client.post(reverse("annotate:login"), {"username": "victim", "password": "pw-for-tests-1"})
    assert ok.status_code == 302
