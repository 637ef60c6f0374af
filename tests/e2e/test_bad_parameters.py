"""Bad query and form parameters get 400 (or are ignored), never a 500: every route walked with junk values."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.urls import reverse

from annotate.services.campaigns import crowdworker_create
from tests.e2e.test_access import urls_of, world  # noqa: F401 - the walk's fixture
from tests.factories import AdminFactory, JobFactory

pytestmark = pytest.mark.django_db

# Every parameter name a page of the site reads, and Django admin's list parameters.
NAMES = [
    "judge", "campaign", "status", "page", "aspect", "ai", "ai_shown", "include_flagged", "include_blocked",
    "refresh", "selection", "sample_n", "seed", "execution", "next", "q", "o", "p",
]  # fmt: skip
JUNK = ["abc", "\x00", "²", "99999999999999999999999", "-1"]


def test_the_reported_cases_answer_400(client, world):  # noqa: F811
    client.force_login(AdminFactory())
    client.raise_request_exception = False
    assert client.get(reverse("pipeline:ai-annotate") + "?judge=abc").status_code == 400
    assert client.get(reverse("pipeline:ai-annotate") + "?judge=²").status_code == 400
    job = JobFactory(kind="annotate", campaign=world["campaign"])
    assert client.get(reverse("pipeline:ai-job-calls", args=[job.pk]) + "?status=nope").status_code == 400
    report = reverse("scoring:report", args=[world["campaign"].slug])
    assert client.get(report + "?filtered=1&ai=²").status_code == 400
    assert client.get(report + "?filtered=1&ai_shown=x").status_code == 400
    assert client.get(report + "?campaign=%00").status_code == 400
    assert client.get(reverse("pipeline:prompt-polish") + "?campaign=a%00b").status_code == 400
    assert client.get(reverse("admin:core_job_changelist") + "?status=%00").status_code == 400


def test_a_nul_byte_in_a_form_is_a_400_not_a_stored_row(client, world):  # noqa: F811
    worker = crowdworker_create(username="w-nul", password="a-long-password-1")
    client.force_login(worker)
    campaign = world["campaign"]
    page = client.get(reverse("annotate:label", args=[campaign.slug]))
    assignment = page.context["assignment"]
    form = {"choice-prompt_following": "left", "rationale-prompt_following": "because\x00"}
    response = client.post(reverse("annotate:label-submit", args=[campaign.slug, assignment.pk]), form)
    assert response.status_code == 400


@pytest.mark.slow
def test_no_route_answers_500_to_junk_parameters(client, world):  # noqa: F811
    client.force_login(AdminFactory())
    client.raise_request_exception = False
    failures = []
    for name, url in urls_of(world["values"]):
        if name in ("annotate:logout", "admin:logout", "media"):
            continue
        if name.startswith("admin:") and not name.endswith("_changelist"):
            continue
        # Each junk value in every parameter at once (a NUL anywhere is refused before any view runs),
        # and the report's judge filter, which only reads its ids with filtered=1.
        queries = [dict.fromkeys(NAMES, value) for value in JUNK]
        queries += [{"filtered": "1", "ai": value, "ai_shown": value} for value in JUNK]
        for query in queries:
            response = client.get(f"{url}?{urlencode(query)}")
            if response.status_code >= 500:
                failures.append((name, query, response.status_code))
    assert not failures, failures[:20]
