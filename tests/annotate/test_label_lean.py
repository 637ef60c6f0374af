"""The pane sent once per judgment set is lean: no layout whitespace, nothing static, one CSRF input, no
cookie re-set, gzip when accepted; images and static files come with long-lived cache headers."""

from __future__ import annotations

import gzip
import html
import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import resolve, reverse

from annotate.services.campaigns import crowdworker_create
from core.template_loaders import strip_layout_whitespace
from tests.annotate.test_assign_engine import campaign_with_pairs
from tests.annotate.test_label_submit import KEYS, login_worker, shown_id

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def served_media(settings):
    settings.MEDIA_ROOT = resolve("/media/x.png").kwargs["document_root"]


def submit(client, campaign, assignment_id, **headers):
    form = {f"choice-{k}": "left" for k in KEYS}
    url = reverse("annotate:label-submit", args=[campaign.slug, assignment_id])
    return client.post(url, form, **HTMX, **headers)


def test_the_answer_pane_has_no_layout_whitespace_and_nothing_sent_once(client, aspects):
    campaign = campaign_with_pairs(4)
    login_worker(client)
    page = client.get(reverse("annotate:label", args=[campaign.slug]))
    text = page.content.decode()
    assert text.count('id="skip-dialog"') == 1  # the full page brings the dialog, once

    answer = submit(client, campaign, page.context["assignment"].pk)
    pane = answer.content.decode()
    assert answer.status_code == 200 and 'id="label-pane"' in pane
    assert not re.search(r">\s*\n\s*<", pane)  # no line-break whitespace between tags
    assert "skip-dialog" not in pane and "Can't judge this pair?" not in pane
    assert pane.count('name="csrfmiddlewaretoken"') == 1
    # The pane names the skip URL of its own pair, which label.js gives the dialog's form.
    skip = re.search(r'data-skip="([^"]+)"', pane).group(1)
    assert skip == reverse("annotate:label-skip", args=[campaign.slug, shown_id(answer)])
    assert len(pane) < 0.8 * len(page.content)


def test_an_answer_does_not_set_the_csrf_cookie_again_and_its_token_works(aspects):
    campaign = campaign_with_pairs(4)
    client = Client(enforce_csrf_checks=True)
    client.force_login(crowdworker_create(username="w-csrf", password="a-long-password-1"))
    page = client.get(reverse("annotate:label", args=[campaign.slug]))
    assert "csrftoken" in page.cookies  # a fresh page sets it
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)

    first = submit(client, campaign, page.context["assignment"].pk, HTTP_X_CSRFTOKEN=token)
    assert first.status_code == 200
    assert "csrftoken" not in first.cookies
    # The pane's own token is valid for the next plain form post.
    pane_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', first.content.decode()).group(1)
    form = {f"choice-{k}": "right" for k in KEYS} | {"csrfmiddlewaretoken": pane_token}
    second = client.post(reverse("annotate:label-submit", args=[campaign.slug, shown_id(first)]), form)
    assert second.status_code == 302 and "csrftoken" not in second.cookies


def test_a_browser_without_the_cookie_still_gets_one(aspects):
    campaign = campaign_with_pairs(2)
    client = Client()
    login_worker(client)
    page = client.get(reverse("annotate:label", args=[campaign.slug]), **HTMX)
    assert page.status_code == 200 and "csrftoken" in page.cookies


def test_answers_are_gzipped_when_the_browser_accepts_it(client, aspects):
    campaign = campaign_with_pairs(4)
    login_worker(client)
    page = client.get(reverse("annotate:label", args=[campaign.slug]))
    plain = submit(client, campaign, page.context["assignment"].pk)
    assert "Content-Encoding" not in plain and "Accept-Encoding" in plain["Vary"]
    packed = submit(client, campaign, shown_id(plain), HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert packed["Content-Encoding"] == "gzip"
    pane = gzip.decompress(packed.content).decode()
    assert 'id="label-pane"' in pane and len(packed.content) < len(pane) / 2


def test_images_are_not_gzipped_and_are_cached_for_the_links_life(client, aspects, served_media):
    campaign = campaign_with_pairs(2)
    login_worker(client)
    page = client.get(reverse("annotate:label", args=[campaign.slug]), HTTP_ACCEPT_ENCODING="gzip")
    text = gzip.decompress(page.content).decode()
    urls = [html.unescape(u) for u in re.findall(r'<img src="([^"]+)"', text)]
    label = reverse("annotate:label", args=[campaign.slug])
    again = gzip.decompress(client.get(label, HTTP_ACCEPT_ENCODING="gzip").content)
    assert urls == [html.unescape(u) for u in re.findall(r'<img src="([^"]+)"', again.decode())]  # stable
    image = client.get(urls[0], HTTP_ACCEPT_ENCODING="gzip")
    assert image.status_code == 200 and "Content-Encoding" not in image
    control = image["Cache-Control"]
    assert control.startswith("private, max-age=") and control.endswith(", immutable")
    assert int(re.search(r"max-age=(\d+)", control).group(1)) >= 900  # at least half of the 30 min default
    assert image["Content-Security-Policy"]  # answered early, still under the policy
    client.logout()
    assert client.get(urls[0]).status_code == 302  # and only to a signed-in user


def test_collected_static_files_are_served_hashed_and_immutable(settings, tmp_path, aspects):
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    call_command("collectstatic", "--noinput", "-v0")
    campaign = campaign_with_pairs(2)
    client = Client()  # a new handler: WhiteNoise reads the collected files when it starts
    login_worker(client)
    page = client.get(reverse("annotate:label", args=[campaign.slug])).content.decode()
    script = re.search(r'src="(/static/js/label\.[0-9a-f]{12}\.js)"', page).group(1)
    response = client.get(script, HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200 and response["Content-Encoding"] == "gzip"
    assert "immutable" in response["Cache-Control"] and "max-age=315360000" in response["Cache-Control"]


def test_changed_campaign_settings_change_the_aspect_rows(client, aspects):
    campaign = campaign_with_pairs(4)
    login_worker(client)
    page = client.get(reverse("annotate:label", args=[campaign.slug]))
    first = submit(client, campaign, page.context["assignment"].pk).content.decode()
    assert 'value="tie"' in first
    campaign.allow_tie = False
    campaign.save()
    second = client.get(reverse("annotate:label", args=[campaign.slug]), **HTMX)
    assert second.status_code == 200 and shown_id(second) == shown_id_of(first)
    assert 'value="tie"' not in second.content.decode() and 'value="left"' in second.content.decode()


def shown_id_of(pane: str) -> int:
    return int(re.search(r"/label/(\d+)/submit", pane).group(1))


def test_layout_whitespace_goes_but_text_and_inline_spaces_stay():
    source = "<ol>\n  <li>a <b>b</b> <i>c</i></li>\n  {% if x %}\n  <p>{{ v }}\n  </p>{% endif %}\n</ol>"
    lean = "<ol><li>a <b>b</b> <i>c</i></li>{% if x %}<p>{{ v }}\n  </p>{% endif %}</ol>"
    assert strip_layout_whitespace(source) == lean
