"""Who may reach what: every URL of the site walked with an anonymous client and a crowdworker, and the
Django admin registered for every model of the project with list filters and search.

The walk reads the URL patterns from the live resolver, so a page added later is checked without editing
this file; a route with a URL parameter this file does not know how to fill fails the walk on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from annotate.models import Assignment, Judgment
from annotate.services.assignments import assignment_reserve
from annotate.services.campaigns import crowdworker_create
from core.models import Job
from tests.annotate.test_assign_engine import campaign_with_pairs
from tests.factories import JobFactory

# The only pages a crowdworker may open: the home page (active campaigns), signing in and out, and the
# labeling routes. Django admin's own login and logout pages are sign-in pages, not admin pages. Media is
# the images on the labeling screen.
WORKER_PAGES = {
    "api:tokens",  # a worker's own API tokens (labeling from a custom front end)
    "api-v1:openapi-json",
    "api-v1:openapi-view",
    "api-v1:label_next",  # the labeling endpoints (their own assignments only: tests/api)
    "api-v1:label_submit",
    "api-v1:label_skip",
    "annotate:home",
    "annotate:login",
    "annotate:logout",
    "annotate:crowd-start",
    "annotate:label",
    "annotate:label-submit",
    "annotate:label-skip",
    "annotate:label-undo",
    "annotate:label-done",
    "media",
    "admin:login",
    "admin:logout",
}
# What anyone may open without signing in: the sign-in pages, the crowd platform's entry link (which
# creates or resumes the worker from the platform's participant id), and an invitation's set-password
# link (it works only with a valid one-time token), and the REST API's schema and its docs page (every API
# operation itself is checked here too, and per role in tests/api/test_permissions.py).
PUBLIC_PAGES = {
    "api-v1:openapi-json",
    "api-v1:openapi-view",
    "annotate:login",
    "annotate:logout",
    "annotate:crowd-start",
    "annotate:invite-accept",
    "admin:login",
    "admin:logout",
}
PROJECT_APPS = ("core", "annotate", "pipeline", "scoring")
GROUP = re.compile(r"\(\?P<(\w+)>[^()]*\)")
CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def _walk(patterns: list, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str, str]]:
    """(name, route template, kind) for every URL pattern; route templates keep `<param>` placeholders."""
    for entry in patterns:
        route = str(entry.pattern).lstrip("^").rstrip("$")
        route = GROUP.sub(r"<\1>", CONVERTER.sub(r"<\1>", route))
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, prefix + route, inner)
        else:
            assert isinstance(entry, URLPattern)
            name = f"{namespace}{entry.name}" if entry.name else ""
            if not name and route.startswith("media/"):
                name = "media"
            yield name or f"{namespace}<unnamed {prefix + route}>", prefix + route, ""


@pytest.fixture
def world(aspects):
    """A campaign with pairs, a second crowdworker holding an assignment, a report job, and the values
    every URL parameter is filled with."""
    campaign = campaign_with_pairs(3, humans_per_pair=1)
    other = crowdworker_create(username="other-worker", password="a-long-password-2")
    assignment = assignment_reserve(campaign=campaign, annotator=other.annotator)
    assert assignment is not None
    job = JobFactory(kind="report", campaign=campaign)
    values = {
        "slug": campaign.slug,
        "pk": job.pk,
        "job_id": job.pk,
        "assignment_id": assignment.pk,
        "annotator_id": other.annotator.pk,
        "pair_id": assignment.pair_id,
        "judgment_id": assignment.pk,  # no judgment may exist: the walk checks none is created
        "app_label": "annotate",
        "object_id": str(assignment.pk),
        "id": str(other.pk),
        "content_type_id": str(ContentType.objects.get_for_model(Assignment).pk),
        "path": "images/x.png",
        "url": "no-such-page/",
        "uidb64": "MQ",
        "token": "set-password",
    }
    return {"campaign": campaign, "assignment": assignment, "values": values}


def urls_of(values: dict[str, object]) -> list[tuple[str, str]]:
    """(name, concrete URL) for every route; fails on a parameter with no value in `values`."""
    found = []
    for name, route, _ in _walk(get_resolver().url_patterns):
        params = re.findall(r"<(\w+)>", route)
        missing = [p for p in params if p not in values]
        assert not missing, f"{name}: no test value for URL parameter(s) {missing}; add them to world()"
        url = "/" + re.sub(r"<(\w+)>", lambda m: str(values[m.group(1)]), route)
        if "(" in url or "\\" in url:
            raise AssertionError(f"{name}: could not turn the route {route!r} into a URL")
        found.append((name, url))
    return found


def refused(response, *, signed_in: bool) -> bool:
    """A refusal: 401/403/404/405, or a redirect to a login page (ours or the admin's)."""
    if response.status_code in (401, 403, 404, 405):
        return True
    if response.status_code == 302:
        target = urlsplit(response["Location"]).path
        return target in (reverse("annotate:login"), reverse("admin:login"))
    return False


@pytest.mark.django_db
def test_the_walk_sees_every_route_and_the_allow_lists_are_not_stale(world):
    names = {name for name, _ in urls_of(world["values"])}
    assert {
        "core:job-list",
        "scoring:report",
        "scoring:report-json",
        "annotate:campaign-detail",
        "admin:index",
    } <= names
    assert "admin:scoring_report_changelist" in names
    assert names >= WORKER_PAGES, WORKER_PAGES - names
    for name, url in urls_of(world["values"]):
        if name.startswith("api-v1:"):
            # One API path serves several methods (list and create): the resolver names the first of them.
            assert resolve(url).namespace == "api-v1", (name, url)
        elif not name.startswith("admin:") and name != "media":
            assert resolve(url).url_name == name.split(":")[-1], (name, url)


@pytest.mark.django_db
def test_anonymous_visitors_reach_only_the_public_pages(client, world):
    for name, url in urls_of(world["values"]):
        if name in PUBLIC_PAGES:
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert refused(response, signed_in=False), (method, name, url, response.status_code)
    assert Assignment.objects.get(pk=world["assignment"].pk).status == Assignment.Status.RESERVED


@pytest.mark.django_db
def test_crowdworkers_never_reach_staff_pages_or_other_workers_data(client, world):
    worker = crowdworker_create(username="w1", password="a-long-password-1")
    assignment = world["assignment"]
    for name, url in urls_of(world["values"]):
        if name in WORKER_PAGES - {"annotate:label-submit", "annotate:label-skip"}:
            continue
        for method in ("get", "post"):
            client.force_login(worker)  # a POST to a logout page must not end the walk signed out
            response = getattr(client, method)(
                url, {"choice-aesthetic": "left", "reason": "image_broken"} if method == "post" else {}
            )
            assert refused(response, signed_in=True) or (
                # Another worker's assignment: the labeling routes answer "someone else has it".
                name in ("annotate:label-submit", "annotate:label-skip") and response.status_code == 409
            ), (method, name, url, response.status_code)
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.RESERVED
    assert not Judgment.objects.exists()
    assert not Job.objects.filter(cancel_requested=True).exists()


def test_every_project_model_has_an_admin_page_with_filters_and_search():
    missing, bare = [], []
    for model in apps.get_models():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        model_admin = admin.site._registry.get(model)
        if model_admin is None:
            missing.append(model._meta.label)
        elif not model_admin.list_filter or not model_admin.search_fields:
            bare.append(model._meta.label)
    assert not missing, f"not registered in the Django admin: {missing}"
    assert not bare, f"admin pages without list_filter or search_fields: {bare}"


@pytest.mark.django_db
def test_admin_change_lists_and_searches_render_for_every_project_model(admin_client, world):
    for model in apps.get_models():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert admin_client.get(url).status_code == 200, url
        assert admin_client.get(url, {"q": "x"}).status_code == 200, url
