"""In Chromium: the API docs page (Swagger UI from static/) and the token page run under the site's policy.

Swagger UI sets styles through the DOM (allowed by a policy without 'unsafe-inline'), so the docs page needs
no relaxation: the test renders it, tries an operation out, shows the models, and expects no violation.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.e2e.test_csp_browser import watch
from tests.factories import AdminFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_docs_page_renders_and_runs_under_the_site_policy(live_server, browser, aspects):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    problems = watch(page)
    response = page.goto(f"{live_server.url}/api/v1/docs")
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"] == settings.CONTENT_SECURITY_POLICY
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.textContent)")
    assert any("/api/v1/label/{slug}/next" in p for p in paths)
    page.click("#operations-campaigns-api_endpoints_campaigns_campaign_list .opblock-summary")
    page.click("button.try-out__btn")
    page.click("button.execute")
    page.wait_for_selector(".live-responses-table .response-col_status", timeout=30_000)
    status = page.text_content(".live-responses-table .response .response-col_status")
    assert status is not None and status.strip() == "401"  # anonymous: the API answered, in its shape
    page.click(".models-control")
    page.wait_for_timeout(500)
    assert problems == []


def test_token_page_runs_under_the_site_policy(live_server, browser, aspects):
    admin = AdminFactory(username="token-admin")
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    problems = watch(page)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", admin.username)
    page.fill("input[name=password]", "pw-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    page.goto(f"{live_server.url}/account/api-tokens/")
    page.fill("#token-name", "phone")
    page.click("button.primary")
    token = page.text_content("#new-token")
    assert token and token.startswith("vps_")
    assert problems == []
