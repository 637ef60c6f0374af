"""Fixtures of the API tests: an admin and a crowdworker with personal tokens, a campaign with pairs."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from annotate.services.campaigns import crowdworker_create
from api.services import api_token_create
from tests.factories import AdminFactory, CampaignFactory, PairFactory


class ApiClient:
    """Django's test client with a bearer token and JSON bodies."""

    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, body: Any = None, **extra: Any) -> Any:
        kwargs: dict[str, Any] = {"headers": {**self.headers, **extra.pop("headers", {})}, **extra}
        if body is not None:
            kwargs.update(data=body, content_type="application/json")
        return getattr(self.client, method.lower())(f"/api/v1{path}", **kwargs)

    def get(self, path: str, **extra: Any) -> Any:
        return self.call("GET", path, **extra)

    def post(self, path: str, body: Any = None, **extra: Any) -> Any:
        return self.call("POST", path, body if body is not None else {}, **extra)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # rate-limit counters and the labeling campaign cache start empty
    yield


@pytest.fixture
def admin_user(db):
    return AdminFactory()


@pytest.fixture
def admin_token(admin_user):
    return api_token_create(user=admin_user, name="tests").token


@pytest.fixture
def worker_user(db):
    return crowdworker_create(username="worker-api")


@pytest.fixture
def worker_token(worker_user):
    return api_token_create(user=worker_user, name="tests").token


@pytest.fixture
def admin_api(admin_token):
    return ApiClient(admin_token)


@pytest.fixture
def worker_api(worker_token):
    return ApiClient(worker_token)


@pytest.fixture
def anon_api(db):
    return ApiClient(None)


@pytest.fixture
def campaign(aspects):
    campaign = CampaignFactory(humans_per_pair=2, gold_rate=0.0, min_seconds_per_pair=0.0)
    for _ in range(3):
        PairFactory(campaign=campaign)
    return campaign
