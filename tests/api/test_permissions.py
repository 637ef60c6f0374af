"""Every endpoint of the OpenAPI document, called as anonymous, as a crowdworker and as an admin.

Anonymous reaches only the schema and the docs; a crowdworker's token reaches only the labeling endpoints;
an admin's token reaches everything. The routes are read from the schema, and the list below must match it,
so an endpoint added without a decision about who may call it fails here.
"""

from __future__ import annotations

import re

import pytest

from api.urls import api

LABELING = {
    ("GET", "/api/v1/label/{slug}/next"),
    ("POST", "/api/v1/label/{slug}/assignments/{assignment_id}/submit"),
    ("POST", "/api/v1/label/{slug}/assignments/{assignment_id}/skip"),
}
ADMIN = {
    ("GET", "/api/v1/campaigns"),
    ("POST", "/api/v1/campaigns"),
    ("GET", "/api/v1/campaigns/{slug}"),
    ("PATCH", "/api/v1/campaigns/{slug}"),
    ("POST", "/api/v1/campaigns/{slug}/status"),
    ("GET", "/api/v1/campaigns/{slug}/progress"),
    ("POST", "/api/v1/campaigns/{slug}/prompts"),
    ("GET", "/api/v1/campaigns/{slug}/prompts"),
    ("POST", "/api/v1/campaigns/{slug}/pairs/build"),
    ("GET", "/api/v1/campaigns/{slug}/pairs"),
    ("GET", "/api/v1/pairs/{pair_id}"),
    ("POST", "/api/v1/images"),
    ("GET", "/api/v1/images"),
    ("GET", "/api/v1/judgments"),
    ("POST", "/api/v1/judgments/bulk"),
    ("GET", "/api/v1/jobs/kinds"),
    ("POST", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/{job_id}"),
    ("POST", "/api/v1/jobs/{job_id}/cancel"),
    ("GET", "/api/v1/campaigns/{slug}/estimate"),
    ("GET", "/api/v1/campaigns/{slug}/report"),
    ("POST", "/api/v1/campaigns/{slug}/report"),
}


def _operations() -> set[tuple[str, str]]:
    schema = api.get_openapi_schema()
    return {(method.upper(), path) for path, item in schema["paths"].items() for method in item}


def test_every_endpoint_is_listed_with_its_audience():
    assert _operations() == LABELING | ADMIN


def _url(path: str, slug: str) -> str:
    values = {"slug": slug, "assignment_id": "999999", "pair_id": "999999", "job_id": "999999"}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _call(client, method: str, path: str, campaign):
    url = _url(path, campaign.slug)
    if method == "GET":
        return client.client.get(url, headers=client.headers)
    call = getattr(client.client, method.lower())
    return call(url, data="{}", content_type="application/json", headers=client.headers)


@pytest.mark.django_db
@pytest.mark.parametrize("method,path", sorted(LABELING | ADMIN))
def test_anonymous_is_refused_with_401(anon_api, campaign, method, path):
    response = _call(anon_api, method, path, campaign)
    assert response.status_code == 401, response.content
    assert response.json() == {
        "detail": "Authentication required: send 'Authorization: Bearer <token>' or sign in.",
        "errors": [],
    }


@pytest.mark.django_db
@pytest.mark.parametrize("method,path", sorted(ADMIN))
def test_crowdworker_token_is_refused_on_admin_endpoints(worker_api, campaign, method, path):
    response = _call(worker_api, method, path, campaign)
    assert response.status_code == 403, response.content
    assert "only the labeling endpoints" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("method,path", sorted(LABELING))
def test_crowdworker_token_reaches_labeling(worker_api, campaign, method, path):
    response = _call(worker_api, method, path, campaign)
    # Reached the endpoint: the answer is about the request (no such assignment, bad body), not about who.
    assert response.status_code not in {401, 403}, response.content
    assert set(response.json()) >= ({"done"} if method == "GET" else {"detail", "errors"})


@pytest.mark.django_db
@pytest.mark.parametrize("method,path", sorted(LABELING | ADMIN))
def test_admin_token_reaches_everything(admin_api, campaign, method, path):
    response = _call(admin_api, method, path, campaign)
    assert response.status_code not in {401, 403, 500}, response.content


@pytest.mark.django_db
def test_schema_and_docs_need_no_sign_in(anon_api):
    schema = anon_api.get("/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "VisionPrefer Studio API"
    assert anon_api.get("/docs").status_code == 200


@pytest.mark.django_db
def test_schema_has_no_duplicate_keys_and_documents_errors(anon_api):
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), keys
        return dict(pairs)

    import json

    schema = json.loads(anon_api.get("/openapi.json").content, object_pairs_hook=no_duplicates)
    report = schema["paths"]["/api/v1/campaigns/{slug}/report"]["get"]["responses"]
    assert {"200", "202", "401", "403", "404", "422", "429"} <= set(report)
    assert "413" in schema["paths"]["/api/v1/images"]["post"]["responses"]


@pytest.mark.django_db
def test_revoked_or_unknown_token_is_401(admin_user, anon_api):
    from api.services import api_token_create, api_token_revoke
    from tests.api.conftest import ApiClient

    made = api_token_create(user=admin_user, name="short-lived")
    client = ApiClient(made.token)
    assert client.get("/campaigns").status_code == 200
    assert api_token_revoke(user=admin_user, token_id=made.row.pk)
    assert client.get("/campaigns").status_code == 401
    assert ApiClient("vps_" + "x" * 43).get("/campaigns").status_code == 401
    admin_user.is_active = False
    admin_user.save()
    assert ApiClient(api_token_create(user=admin_user, name="x").token).get("/campaigns").status_code == 401


@pytest.mark.django_db
def test_session_works_and_writes_need_csrf(admin_user, campaign):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.get("/api/v1/campaigns").status_code == 200
    refused = client.post("/api/v1/campaigns", data={"name": "x"}, content_type="application/json")
    assert refused.status_code == 403
    client.get("/account/api-tokens/")  # any page sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    made = client.post(
        "/api/v1/campaigns",
        data={"name": "Via session"},
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert made.status_code == 201, made.content
