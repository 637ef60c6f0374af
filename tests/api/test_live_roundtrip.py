"""A client's whole round trip over real HTTP against a live server, with a real Celery worker for the report:
create a campaign, push prompts and images, build pairs, three workers label through the labeling endpoints,
pull the judgments incrementally, fetch the report. No test-client shortcuts: only `requests` calls."""

from __future__ import annotations

import time

import pytest
import requests

from annotate.services.campaigns import crowdworker_create
from api.services import api_token_create
from tests.factories import AdminFactory, GeneratorFactory, png_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class Session(requests.Session):
    def __init__(self, base: str, token: str) -> None:
        super().__init__()
        self.base = base
        self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        response = super().request(method, self.base + url, *args, timeout=30, **kwargs)
        assert response.status_code < 500, response.text
        return response


def test_round_trip_over_http(live_server, worker, aspects):
    base = f"{live_server.url}/api/v1"
    admin = Session(base, api_token_create(user=AdminFactory(), name="notebook").token)
    GeneratorFactory(name="cluster-a")
    GeneratorFactory(name="cluster-b")

    made = admin.post(
        "/campaigns",
        json={
            "name": "Round trip",
            "humans_per_pair": 3,
            "gold_rate": 0.0,
            "min_seconds_per_pair": 0.0,
            "aspects": ["aesthetic", "fidelity"],
        },
    )
    assert made.status_code == 201, made.text
    slug = made.json()["slug"]
    prompts = admin.post(
        f"/campaigns/{slug}/prompts", json={"prompts": [{"prompt": "a red cube"}, {"prompt": "a cat"}]}
    )
    assert prompts.status_code == 201 and prompts.json()["created"] == 2
    for prompt_id in prompts.json()["prompt_ids"]:
        for generator in ("cluster-a", "cluster-b"):
            uploaded = admin.post(
                "/images",
                data={"generator": generator, "prompt_id": prompt_id},
                files={"file": ("i.png", png_bytes((24, 24)), "image/png")},
            )
            assert uploaded.status_code == 201, uploaded.text
    built = admin.post(f"/campaigns/{slug}/pairs/build", json={"strategy": "cross_generator"})
    assert built.json() == {"created": 2, "total": 2}
    assert admin.post(f"/campaigns/{slug}/status", json={"status": "active"}).json()["status"] == "active"

    workers = [
        Session(base, api_token_create(user=crowdworker_create(username=f"rt-{k}"), name="fe").token)
        for k in range(3)
    ]
    labelled = 0
    for k, client in enumerate(workers):
        while True:
            nxt = client.get(f"/label/{slug}/next").json()
            if nxt["done"]:
                break
            task = nxt["task"]
            side = ["left", "right", "tie"][k]
            submitted = client.post(
                f"/label/{slug}/assignments/{task['assignment_id']}/submit",
                json={"choices": {a["key"]: side for a in task["aspects"]}},
            )
            assert submitted.status_code == 200, submitted.text
            labelled += 1
    assert labelled == 6  # 2 pairs x 3 humans, nobody twice, nobody more
    forbidden = workers[0].get(f"/judgments?campaign={slug}")
    assert forbidden.status_code == 403

    pulled, since = [], 0
    while True:
        page = admin.get(f"/judgments?campaign={slug}&since_id={since}&limit=5").json()
        pulled += page["items"]
        since = page["next_since_id"]
        if not page["has_more"]:
            break
    assert len(pulled) == 12 and len({j["id"] for j in pulled}) == 12
    assert {j["annotator"] for j in pulled} == {"rt-0", "rt-1", "rt-2"}
    assert admin.get(f"/campaigns/{slug}/progress").json()["complete"] == 2

    url = f"/campaigns/{slug}/report?n_resamples=20"
    job_id = admin.post(url).json()["job_id"]
    deadline = time.monotonic() + 120
    while (job := admin.get(f"/jobs/{job_id}").json())["status"] not in {"succeeded", "failed", "cancelled"}:
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
    assert job["status"] == "succeeded", job
    report = admin.get(url)
    assert report.status_code == 200
    assert report.json()["totals"]["n_judgments"] == 12
