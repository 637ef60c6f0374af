"""Local media only through short-lived signed links that the pages allowed to show an image hand out."""

from __future__ import annotations

import html
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import resolve, reverse

from annotate.services.campaigns import crowdworker_create
from core.media import media_link_query, media_link_valid
from tests.annotate.test_assign_engine import campaign_with_pairs
from tests.factories import AdminFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def served_media(settings):
    """Store images where the /media/ route serves them from (the route is built at import time)."""
    settings.MEDIA_ROOT = resolve("/media/x.png").kwargs["document_root"]


def image_urls(page) -> list[str]:
    return [html.unescape(u) for u in re.findall(r'<img src="([^"]+)"', page.content.decode())]


def test_a_draft_campaigns_image_is_not_served_by_its_path(client, aspects, served_media):
    campaign = campaign_with_pairs(2, status="draft")
    image = campaign.pairs.first().image_a
    client.force_login(crowdworker_create(username="w-curious", password="a-long-password-1"))
    # Before: any signed-in user fetched /media/<path> of any campaign.
    assert client.get(f"/media/{image.file.name}").status_code == 403
    assert client.get(f"/media/{image.file.name}?exp=9999999999&sig=00").status_code == 403


def test_the_labeling_screen_links_load_for_the_worker_who_holds_the_pair(client, aspects, served_media):
    campaign = campaign_with_pairs(2)
    client.force_login(crowdworker_create(username="w-label", password="a-long-password-1"))
    page = client.get(reverse("annotate:label", args=[campaign.slug]))
    urls = image_urls(page)
    assert len(urls) == 2
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert response["Cache-Control"].startswith("private, max-age=")
    client.logout()
    assert client.get(urls[0]).status_code == 302  # and only to a signed-in user


def test_the_admin_campaign_page_links_load(client, aspects, served_media):
    campaign = campaign_with_pairs(2, status="draft")
    client.force_login(AdminFactory())
    urls = image_urls(client.get(reverse("annotate:campaign-detail", args=[campaign.slug])))
    assert urls and all(client.get(u).status_code == 200 for u in urls)


def test_a_link_for_one_file_does_not_open_another(client, aspects, served_media):
    campaign = campaign_with_pairs(2)
    pair = campaign.pairs.first()
    client.force_login(AdminFactory())
    link = urlsplit(pair.image_a.file.url)
    assert client.get(f"/media/{pair.image_b.file.name}?{link.query}").status_code == 403


def test_links_expire_and_stay_stable_for_half_their_life(settings):
    settings.MEDIA_URL_MAX_AGE_S = 1800
    now = 1_700_000_000.0
    query = parse_qs(media_link_query("images/a.png", now=now))
    exp, sig = query["exp"][0], query["sig"][0]
    assert now + 900 <= int(exp) <= now + 1800
    assert media_link_valid("images/a.png", expires=exp, signature=sig, now=now)
    assert media_link_valid("images/a.png", expires=exp, signature=sig, now=int(exp) - 1)
    assert not media_link_valid("images/a.png", expires=exp, signature=sig, now=int(exp) + 1)
    assert not media_link_valid("images/b.png", expires=exp, signature=sig, now=now)
    assert not media_link_valid("images/a.png", expires=str(int(exp) + 1), signature=sig, now=now)
    # The same link for every page of the same quarter-hour, so the browser's cache keeps working.
    assert media_link_query("images/a.png", now=now) == media_link_query("images/a.png", now=now + 60)
    assert time.time() < int(parse_qs(media_link_query("x"))["exp"][0])
