"""In Chromium, with the strict Content-Security-Policy: no page logs a violation and every image loads.

Visits the admin's pages (campaign, generation, prompts, AI judges, jobs, a report with its charts, the
Django admin) and a crowdworker's path (entry link, labeling with htmx swaps, completion screen).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from scoring.report_params import ReportParameters
from scoring.services.reports import report_compute
from tests.annotate.test_assign_engine import campaign_with_pairs
from tests.factories import AdminFactory
from tests.scoring.test_report import build_campaign

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PID = "5f1e2d3c4b5a69788796a5b4"


def watch(page) -> list[str]:
    """Console messages about the policy, collected while the page is used."""
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    return problems


def broken_images(page) -> list[str]:
    return page.evaluate(
        "Array.from(document.images).filter(i => i.getAttribute('src') && i.complete && i.naturalWidth === 0).map(i => i.src)"
    )


def test_admin_pages_run_under_the_policy(live_server, browser, served_media, aspects):  # noqa: F811
    campaign, _humans, _judges, _used = build_campaign(aspects, n_pairs=6)
    report_compute(campaign=campaign, params=ReportParameters(campaign_ids=(campaign.pk,)))
    admin = AdminFactory(username="csp-admin")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = watch(page)
    page.goto(f"{live_server.url}{reverse('annotate:login')}")
    page.fill("input[name=username]", admin.username)
    page.fill("input[name=password]", "pw-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    urls = [
        reverse("annotate:home"),
        reverse("annotate:campaign-detail", args=[campaign.slug]),
        reverse("pipeline:campaign-generate", args=[campaign.slug]),
        reverse("pipeline:generator-list"),
        reverse("pipeline:prompt-import"),
        reverse("pipeline:prompt-polish"),
        reverse("pipeline:ai-judges"),
        reverse("pipeline:ai-annotate"),
        reverse("core:job-list"),
        reverse("scoring:report", args=[campaign.slug]),
        reverse("admin:index"),
        reverse("admin:annotate_campaign_changelist"),
        reverse("admin:annotate_campaign_change", args=[campaign.pk]),
        reverse("admin:pipeline_aijudgeconfig_add"),
    ]
    for url in urls:
        response = page.goto(f"{live_server.url}{url}")
        assert response is not None and response.status == 200, url
        assert response.headers.get("content-security-policy"), url
        page.wait_for_load_state("networkidle")
        assert not broken_images(page), (url, broken_images(page))
    # The report's aspect tabs and a live htmx request.
    page.goto(f"{live_server.url}{reverse('scoring:report', args=[campaign.slug])}")
    page.click("nav.tabs a >> nth=1")
    page.wait_for_load_state("networkidle")
    assert page.locator("svg").count() > 0
    assert not problems, problems


def test_the_labeling_path_runs_under_the_policy(live_server, browser, served_media, aspects):  # noqa: F811
    campaign = campaign_with_pairs(6, worker_quota=2, completion_code="CSP-OK", gold_rate=0.0)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    problems = watch(page)
    page.goto(f"{live_server.url}/c/{campaign.slug}/start?PROLIFIC_PID={PID}")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.images.length") >= 2 and not broken_images(page)
    for _ in range(2):
        action = page.get_attribute("#label-form", "action")
        for _aspect in range(4):
            page.keyboard.press("a")
        page.keyboard.press("Enter")
        # The next pair swaps in over htmx (or the completion screen loads).
        page.wait_for_function(
            "prev => document.querySelector('#completion-code') || "
            "(document.querySelector('#label-form') && document.querySelector('#label-form').getAttribute('action') !== prev)",
            arg=action,
        )
        assert not broken_images(page)
    page.wait_for_selector("#completion-code")
    assert page.inner_text("#completion-code") == "CSP-OK"
    assert not problems, problems
