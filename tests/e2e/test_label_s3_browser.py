"""The labeling screen with images in the S3 bucket (loopback server): Chromium loads every image from its
presigned link under the app's Content-Security-Policy, and the same page with an img-src that leaves the
store out shows none (so the check can fail)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from annotate.models import Image
from annotate.services.campaigns import crowdworker_create
from tests.annotate.test_assign_engine import campaign_with_pairs

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
LOADED = "[...document.querySelectorAll('img[src*=X-Amz-Signature]')].map(i => [i.currentSrc, i.complete && i.naturalWidth > 0])"
# Waits are functions: the page's CSP forbids the eval Playwright uses for a bare expression.
ALL_LOADED = f"() => {{ const l = {LOADED}; return l.length === 2 && l.every(([, ok]) => ok); }}"
ALL_TRIED = f"() => {{ const l = {LOADED}; return l.length === 2 && l.every(([src]) => src); }}"


def signed_in_page(browser, live_server, username: str):
    crowdworker_create(username=username, password="a-long-password-1")
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    # CSP violations, recorded by the page itself (Chromium does not report them as console messages).
    page.add_init_script(
        "window.cspViolations = []; document.addEventListener('securitypolicyviolation',"
        " e => window.cspViolations.push(e.effectiveDirective));"
    )
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "a-long-password-1")
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    return page


def test_the_labeling_screen_shows_images_from_the_bucket(
    live_server, browser, aspects, s3_storage, s3_server
):
    campaign = campaign_with_pairs(2)
    page = signed_in_page(browser, live_server, "w-s3-browser")
    responses: dict[str, bytes] = {}
    page.on("response", lambda r: responses.setdefault(r.url, r.body()) if "/images/" in r.url else None)
    page.goto(f"{live_server.url}{reverse('annotate:label', args=[campaign.slug])}")
    page.wait_for_function(ALL_LOADED)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "labeling-screen-s3.png"))
    loaded = page.evaluate(LOADED)
    assert all(src.startswith(f"{s3_server.endpoint_url}/{s3_server.bucket}/images/") for src, _ in loaded)
    hashes = set(Image.objects.values_list("sha256", flat=True))
    assert len(responses) >= 2 and {hashlib.sha256(b).hexdigest() for b in responses.values()} <= hashes
    assert page.evaluate("window.cspViolations") == []


def test_without_the_store_in_img_src_the_browser_refuses_the_images(
    live_server, browser, aspects, s3_storage, s3_server
):
    campaign = campaign_with_pairs(2)
    settings.CONTENT_SECURITY_POLICY = settings.CONTENT_SECURITY_POLICY.replace(
        f" {s3_server.endpoint_url}", ""
    )
    page = signed_in_page(browser, live_server, "w-s3-csp")
    page.goto(f"{live_server.url}{reverse('annotate:label', args=[campaign.slug])}")
    page.wait_for_function(ALL_TRIED)
    page.wait_for_timeout(500)
    assert not any(ok for _, ok in page.evaluate(LOADED))
    assert "img-src" in page.evaluate("window.cspViolations")
