"""What each endpoint does, through the same services as the pages: campaigns, prompts, images, pairs,
judgments (incremental pull, idempotent bulk create), jobs (any registered kind), reports and labeling."""

from __future__ import annotations

import dataclasses

import pytest
from django.test import override_settings

from annotate.models import Assignment, Campaign, Judgment, Prompt
from api.models import ApiToken
from api.services import token_hash
from core.models import Job
from core.registry import JobKind, JobParams, job_kind_register
from tests.api.conftest import ApiClient
from tests.factories import GeneratorFactory, PromptFactory, png_bytes

pytestmark = pytest.mark.django_db


def _error_shape(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"detail", "errors"}
    assert all(set(e) == {"loc", "msg"} for e in body["errors"])
    return body


def test_campaign_create_update_status_and_progress(admin_api, aspects):
    made = admin_api.post("/campaigns", {"name": "From a notebook", "aspects": ["aesthetic", "fidelity"]})
    assert made.status_code == 201, made.content
    slug = made.json()["slug"]
    assert made.json()["status"] == "draft" and made.json()["aspects"] == ["aesthetic", "fidelity"]
    changed = admin_api.call("PATCH", f"/campaigns/{slug}", {"humans_per_pair": 5, "allow_tie": False})
    assert changed.json()["humans_per_pair"] == 5 and changed.json()["allow_tie"] is False
    assert changed.json()["aspects"] == ["aesthetic", "fidelity"]  # left out: kept
    assert admin_api.post(f"/campaigns/{slug}/status", {"status": "active"}).json()["status"] == "active"
    assert Campaign.objects.get(slug=slug).status == "active"
    assert admin_api.get(f"/campaigns/{slug}/progress").json()["total"] == 0
    assert [c["slug"] for c in admin_api.get("/campaigns?status=active").json()] == [slug]


def test_campaign_create_refuses_bad_input_with_the_error_shape(admin_api, aspects):
    body = _error_shape(admin_api.post("/campaigns", {"name": "x", "humans_per_pair": 0}), 422)
    assert any(e["loc"][-1] == "humans_per_pair" for e in body["errors"])
    body = _error_shape(admin_api.post("/campaigns", {"name": "x", "aspects": ["nope"]}), 400)
    assert "Unknown aspects: nope" in body["detail"]
    assert not Campaign.objects.filter(name="x").exists()
    _error_shape(admin_api.get("/campaigns/no-such-campaign"), 404)
    _error_shape(admin_api.call("DELETE", "/campaigns"), 405)
    _error_shape(admin_api.get("/no/such/route"), 404)
    bad_json = admin_api.client.post(
        "/api/v1/campaigns", data="{not json", content_type="application/json", headers=admin_api.headers
    )
    assert bad_json.status_code in {400, 422}
    assert set(bad_json.json()) == {"detail", "errors"}


def test_unexpected_error_is_a_json_500(admin_api, campaign, monkeypatch):
    import api.endpoints.campaigns as endpoints

    def broken(**_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(endpoints, "campaign_progress", broken)
    body = _error_shape(admin_api.get(f"/campaigns/{campaign.slug}/progress"), 500)
    assert body["detail"] == "Server error."  # nothing internal leaks


def test_prompts_bulk_create_dedups_and_is_all_or_nothing(admin_api, campaign):
    url = f"/campaigns/{campaign.slug}/prompts"
    first = admin_api.post(
        url, {"prompts": [{"prompt": "a red cube"}, {"prompt": "a blue ball", "tags": ["t"]}]}
    )
    assert first.status_code == 201 and first.json()["created"] == 2
    again = admin_api.post(url, {"prompts": [{"prompt": "a  red cube"}, {"prompt": "a red cube"}]}).json()
    assert again["created"] == 0 and again["existing"] == 1 and again["duplicates_in_request"] == 1
    listed = admin_api.get(f"{url}?search=cube").json()
    assert [p["text"] for p in listed] == ["a red cube"]
    before = Prompt.objects.count()
    _error_shape(admin_api.post(url, {"prompts": [{"prompt": "ok"}, {"prompt": ""}]}), 422)
    assert Prompt.objects.count() == before
    too_many = {"prompts": [{"prompt": f"p{i}"} for i in range(1001)]}
    _error_shape(admin_api.post(url, too_many), 422)


def test_image_upload_runs_the_ingestion_checks(admin_api, campaign):
    prompt = PromptFactory()
    GeneratorFactory(name="cluster-sdxl")
    data = png_bytes((20, 12))
    fields = {"generator": "cluster-sdxl", "prompt_id": str(prompt.pk)}
    from django.core.files.uploadedfile import SimpleUploadedFile

    def upload(content: bytes, name: str = "x.png"):
        return admin_api.client.post(
            "/api/v1/images",
            data={**fields, "file": SimpleUploadedFile(name, content)},
            headers=admin_api.headers,
        )

    made = upload(data)
    assert made.status_code == 201, made.content
    assert made.json()["width"] == 20 and made.json()["generator"] == "cluster-sdxl"
    assert upload(data).status_code == 200  # same bytes: the stored image
    body = _error_shape(upload(b"not an image at all"), 400)
    assert body["detail"]
    listed = admin_api.get(f"/images?generator=cluster-sdxl&prompt_id={prompt.pk}").json()
    assert [i["id"] for i in listed] == [made.json()["id"]]


@override_settings(REQUEST_MAX_BODY_ANONYMOUS=1000, REQUEST_MAX_BODY_SIGNED_IN=2000)
def test_body_caps_follow_the_token(admin_api, worker_api, anon_api, campaign):
    """A token-authenticated upload larger than the anonymous (and worker) cap passes; others get 413."""
    GeneratorFactory(name="big")
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = png_bytes((64, 64))
    import io

    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.effect_noise((80, 80), 60).convert("RGB").save(buffer, format="PNG")
    data = buffer.getvalue()
    assert len(data) > 2000

    def upload(client):
        return client.client.post(
            "/api/v1/images",
            data={"generator": "big", "file": SimpleUploadedFile("n.png", data)},
            headers=client.headers,
        )

    assert upload(admin_api).status_code == 201
    body = _error_shape(upload(anon_api), 413)
    assert "limit is 1,000 bytes" in body["detail"]
    assert "limit is 2,000 bytes" in _error_shape(upload(worker_api), 413)["detail"]
    fake = ApiClient("vps_forged")
    assert "limit is 1,000 bytes" in _error_shape(upload(fake), 413)["detail"]


def test_pairs_build_list_and_read_with_judgments(admin_api, campaign):
    prompt = PromptFactory()
    campaign.prompts.add(prompt)
    from tests.factories import ImageFactory

    for _ in range(3):
        ImageFactory(prompt=prompt)
    url = f"/campaigns/{campaign.slug}/pairs"
    built = admin_api.post(f"{url}/build", {"strategy": "all"})
    assert built.status_code == 201 and built.json()["created"] == 3  # 3 images: 3 pairs
    assert admin_api.post(f"{url}/build", {"strategy": "all"}).json()["created"] == 0
    _error_shape(admin_api.post(f"{url}/build", {"strategy": "sample"}), 400)
    first = admin_api.get(f"{url}?limit=4").json()
    rest = admin_api.get(f"{url}?after_id={first[-1]['id']}").json()
    assert len(first) == 4 and len(rest) == 2
    detail = admin_api.get(f"/pairs/{first[0]['id']}").json()
    assert detail["judgments"] == [] and detail["prompt"]


def _jsonl_row(pair, annotator: str, aspect: str = "aesthetic", choice: str = "A") -> dict:
    return {
        "campaign": pair.campaign.slug,
        "pair": pair.pk,
        "annotator": annotator,
        "annotator_kind": "human",
        "aspect": aspect,
        "choice": choice,
    }


def test_judgments_bulk_is_idempotent_and_pull_is_cursor_paginated(admin_api, campaign):
    pairs = list(campaign.pairs.order_by("id"))
    rows = [_jsonl_row(p, f"ext-{k}") for p in pairs for k in range(3)]
    made = admin_api.post("/judgments/bulk", {"judgments": rows})
    assert made.status_code == 201, made.content
    assert made.json()["created"] == 9
    again = admin_api.post("/judgments/bulk", {"judgments": rows}).json()
    assert again["created"] == 0 and again["unchanged"] == 9
    conflict = [{**rows[0], "choice": "B"}, _jsonl_row(pairs[0], "ext-new")]
    body = _error_shape(admin_api.post("/judgments/bulk", {"judgments": conflict}), 400)
    assert body["errors"] and "Nothing was stored" in body["detail"]
    assert Judgment.objects.count() == 9  # the good line of the refused call was not stored either

    seen, since = [], 0
    while True:
        page = admin_api.get(f"/judgments?campaign={campaign.slug}&since_id={since}&limit=4").json()
        seen += [j["id"] for j in page["items"]]
        since = page["next_since_id"]
        if not page["has_more"]:
            break
    assert seen == sorted(Judgment.objects.values_list("id", flat=True))
    admin_api.post("/judgments/bulk", {"judgments": [_jsonl_row(pairs[1], "late")]})
    late = admin_api.get(f"/judgments?since_id={since}").json()
    assert [j["annotator"] for j in late["items"]] == ["late"]
    assert admin_api.get("/judgments?annotator_kind=ai").json()["items"] == []
    detail = admin_api.get(f"/pairs/{pairs[0].pk}").json()
    assert sorted(j["annotator"] for j in detail["judgments"]) == ["ext-0", "ext-1", "ext-2"]


@dataclasses.dataclass(frozen=True)
class LateParams(JobParams):
    """A kind that lands after the API: launching it needs no API change."""

    campaign_id: int
    epochs: int = 1


def test_jobs_launch_any_registered_kind_with_validated_params(admin_api, campaign):
    job_kind_register(
        JobKind(name="late_kind", label="Late", handler="core.jobs.demo_countdown", params=LateParams)
    )
    kinds = {k["name"]: k for k in admin_api.get("/jobs/kinds").json()}
    assert kinds["late_kind"]["params_schema"]["required"] == ["campaign_id"]
    assert {"annotate", "report", "demo"} <= set(kinds)
    launched = admin_api.post(
        "/jobs",
        {"kind": "late_kind", "params": {"campaign_id": campaign.pk, "epochs": 3}, "campaign": campaign.slug},
    )
    assert launched.status_code == 201, launched.content
    job = Job.objects.get(pk=launched.json()["id"])
    assert job.kind == "late_kind" and job.params == {"campaign_id": campaign.pk, "epochs": 3}
    bad = _error_shape(admin_api.post("/jobs", {"kind": "late_kind", "params": {"epochs": "many"}}), 400)
    assert "campaign_id" in bad["detail"] and "epochs" in bad["detail"]
    assert "known kinds" in _error_shape(admin_api.post("/jobs", {"kind": "nope"}), 400)["detail"]
    read = admin_api.get(f"/jobs/{job.pk}").json()
    assert read["status"] == "pending" and read["campaign"] == campaign.slug
    cancelled = admin_api.post(f"/jobs/{job.pk}/cancel").json()
    assert cancelled["status"] == "cancelled"


def test_report_get_never_starts_a_job_and_post_does(admin_api, campaign):
    url = f"/campaigns/{campaign.slug}/report?n_resamples=50"
    assert "POST" in _error_shape(admin_api.get(url), 404)["detail"]
    assert not Job.objects.filter(kind="report").exists()
    started = admin_api.post(url)
    assert started.status_code == 202
    job_id = started.json()["job_id"]
    assert admin_api.post(url).json()["job_id"] == job_id  # joins the running job
    assert admin_api.get(url).status_code == 202
    from core.jobs import job_run

    job_run(job_id=job_id)
    report = admin_api.get(url)
    assert report.status_code == 200 and "aspects" in report.json()


def _submit_all(client, slug, task, side="left"):
    choices = {a["key"]: side for a in task["aspects"]}
    return client.post(f"/label/{slug}/assignments/{task['assignment_id']}/submit", {"choices": choices})


def test_labeling_next_submit_skip_own_assignments_only(worker_api, campaign, db):
    from annotate.services.campaigns import crowdworker_create
    from api.services import api_token_create

    slug = campaign.slug
    task = worker_api.get(f"/label/{slug}/next").json()["task"]
    assert task["left_is"] in {"A", "B"} and task["left"]["url"].startswith("http")
    assert worker_api.get(f"/label/{slug}/next").json()["task"]["assignment_id"] == task["assignment_id"]
    other = ApiClient(api_token_create(user=crowdworker_create(username="other-worker"), name="t").token)
    theirs = _submit_all(other, slug, task)
    assert theirs.status_code in {403, 404, 409}
    assert set(theirs.json()) == {"detail", "errors"}
    missing = worker_api.post(f"/label/{slug}/assignments/{task['assignment_id']}/submit", {"choices": {}})
    body = _error_shape(missing, 422)
    assert {tuple(e["loc"]) for e in body["errors"]} == {
        ("body", "choices", a["key"]) for a in task["aspects"]
    }
    stored = _submit_all(worker_api, slug, task)
    assert stored.status_code == 200 and stored.json()["duplicate"] is False
    assert _submit_all(worker_api, slug, task).json()["duplicate"] is True
    expected = "A" if task["left_is"] == "A" else "B"
    assert set(
        Judgment.objects.filter(assignment_id=task["assignment_id"]).values_list("choice", flat=True)
    ) == {expected}
    nxt = worker_api.get(f"/label/{slug}/next").json()["task"]
    skipped = worker_api.post(
        f"/label/{slug}/assignments/{nxt['assignment_id']}/skip", {"reason": "image_broken"}
    )
    assert skipped.status_code == 204
    assert Assignment.objects.get(pk=nxt["assignment_id"]).skip_reason == "image_broken"
    _error_shape(
        worker_api.post(f"/label/{slug}/assignments/{nxt['assignment_id']}/skip", {"reason": "bored"}), 422
    )
    _error_shape(worker_api.get("/label/no-such-campaign/next"), 404)


@override_settings(API_WRITE_RATE=3, API_WRITE_RATE_WINDOW_S=60)
def test_writes_are_rate_limited_per_token(admin_api, admin_user, campaign):
    from api.services import api_token_create

    url = f"/campaigns/{campaign.slug}/status"
    for _ in range(3):
        assert admin_api.post(url, {"status": "active"}).status_code == 200
    limited = admin_api.post(url, {"status": "active"})
    body = _error_shape(limited, 429)
    assert 1 <= int(limited["Retry-After"]) <= 60 and "retry in" in body["detail"]
    assert admin_api.get(f"/campaigns/{campaign.slug}").status_code == 200  # reads are not limited
    second = ApiClient(api_token_create(user=admin_user, name="second").token)
    assert second.post(url, {"status": "active"}).status_code == 200  # per token


def test_docs_page_uses_local_assets_and_the_site_policy(anon_api, settings):
    docs = anon_api.get("/docs")
    assert docs.status_code == 200
    assert b"/static/ninja/swagger-ui-bundle.js" in docs.content and b"cdn" not in docs.content.lower()
    assert docs["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY


def test_token_page_creates_shows_once_and_revokes(client, worker_user):
    client.force_login(worker_user)
    empty = client.get("/account/api-tokens/")
    assert b"no API tokens yet" in empty.content and b"only the labeling endpoints" in empty.content
    made = client.post("/account/api-tokens/", {"action": "create", "name": "my front end"})
    token = made.context["new_token"]
    assert token.encode() in made.content and made["Cache-Control"] == "no-store"
    row = ApiToken.objects.get(user=worker_user)
    assert row.key_sha256 == token_hash(token) and token not in row.prefix + row.name
    assert token.encode() not in client.get("/account/api-tokens/").content  # shown once
    assert ApiClient(token).get("/label/x/next").status_code == 404  # works (no such campaign)
    assert client.post("/account/api-tokens/", {"action": "create", "name": " "}).status_code == 400
    other = ApiToken.objects.create(
        user=worker_user.__class__.objects.create(username="z"), name="n", prefix="p", key_sha256="0" * 64
    )
    assert client.post("/account/api-tokens/", {"action": "revoke", "token_id": other.pk}).status_code == 404
    assert client.post("/account/api-tokens/", {"action": "revoke", "token_id": row.pk}).status_code == 200
    assert ApiClient(token).get("/label/x/next").status_code == 401
    client.logout()
    assert client.get("/account/api-tokens/").status_code == 302
