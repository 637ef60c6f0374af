"""The report page's links keep its filters, and only a POST starts a report job."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from core.models import Job
from scoring.report_params import ReportParameters
from scoring.services.reports import report_compute
from tests.factories import AdminFactory
from tests.scoring.test_report import build_campaign

pytestmark = pytest.mark.django_db


def links(page, pattern: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(pattern, page.content.decode())]


def tab_links(page) -> list[str]:
    nav = re.search(r'<nav class="tabs".*?</nav>', page.content.decode(), re.S)
    assert nav, "the page shows no aspect tabs"
    return [html.unescape(h) for h in re.findall(r'href="([^"]+)"', nav.group(0))]


def json_link(page) -> str:
    (href,) = links(page, r'href="([^"]*report\.json[^"]*)"')
    return href


@pytest.fixture
def world(aspects, client):
    campaign, humans, judges, used = build_campaign(aspects, n_pairs=6)
    client.force_login(AdminFactory())
    return campaign, judges


def test_tabs_and_json_of_the_default_report_show_the_same_report(client, world):
    campaign, judges = world
    report_compute(campaign=campaign, params=ReportParameters(campaign_ids=(campaign.pk,)))
    url = reverse("scoring:report", args=[campaign.slug])
    page = client.get(url)
    assert "No report for these filters yet" not in page.content.decode()
    for tab in tab_links(page):
        shown = client.get(url + tab)
        body = shown.content.decode()
        assert "No report for these filters yet" not in body, tab
        assert all(judge.name in body for judge in judges), tab  # not a report without the AI judges
    answer = client.get(json_link(page))
    assert answer.status_code == 200 and {j["id"] for j in answer.json()["ai_judges"]} == {
        j.pk for j in judges
    }
    assert not Job.objects.exists()


def test_tabs_and_json_keep_a_judge_and_worker_filter(client, world):
    campaign, judges = world
    params = ReportParameters(campaign_ids=(campaign.pk,), include_flagged=True, ai_judge_ids=(judges[0].pk,))
    report_compute(campaign=campaign, params=params)
    url = reverse("scoring:report", args=[campaign.slug])
    query = f"?filtered=1&include_flagged=1&ai={judges[0].pk}&ai_shown={judges[0].pk}&ai_shown={judges[1].pk}"
    page = client.get(url + query)
    assert page.context["params"] == params and page.context["report"] is not None
    for tab in tab_links(page):
        assert client.get(url + tab).context["params"] == params, tab
    answer = client.get(json_link(page))
    assert answer.status_code == 200 and [j["id"] for j in answer.json()["ai_judges"]] == [judges[0].pk]
    assert answer.json()["parameters"]["include_flagged"] is True
    assert not Job.objects.exists()


def test_a_get_never_starts_a_report_job(client, world):
    campaign, _judges = world
    url = reverse("scoring:report-json", args=[campaign.slug])
    refresh = client.get(url + "?refresh=1")
    assert refresh.status_code == 400 and refresh.json()["refresh"]["method"] == "POST"
    missing = client.get(url)
    assert missing.status_code == 404 and "POST" in missing.json()["error"]
    assert not Job.objects.exists()
    started = client.post(url)
    assert started.status_code == 202 and Job.objects.get(pk=started.json()["job_id"]).kind == "report"
    joined = client.get(url)  # while it runs, a GET answers with the job, and starts no other
    assert joined.status_code == 202 and joined.json()["job_id"] == started.json()["job_id"]
    assert Job.objects.count() == 1
