"""Schemathesis against the OpenAPI document, as an admin and as a crowdworker: no 5xx, every response
matches its schema. A bounded number of examples per operation keeps it to a few minutes of CPU."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from annotate.services.campaigns import crowdworker_create
from api.services import api_token_create
from config.wsgi import application
from tests.factories import AdminFactory, CampaignFactory, PairFactory

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
EXAMPLES = 12

CHECKS = [
    schemathesis.checks.not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


@pytest.fixture
def _keep_connection():
    """Calls go straight to the WSGI app: stop it closing the test's database connection after each one."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(transactional_db, aspects, settings, _keep_connection):
    # Transactional: every call commits on its own, as in production (autocommit), so a statement the
    # database refused (answered 400) does not leave one shared test transaction aborted for later calls.
    settings.API_WRITE_RATE = 100_000
    cache.clear()
    campaign = CampaignFactory(slug="c", humans_per_pair=2, gold_rate=0.0)
    for _ in range(2):
        PairFactory(campaign=campaign)
    return {
        "admin": api_token_create(user=AdminFactory(), name="fuzz").token,
        "worker": api_token_create(user=crowdworker_create(username="fuzz-worker"), name="fuzz").token,
    }


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "worker"])
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case, role, tokens):
    # identity: schemathesis reads the body as sent (answers to gzip-accepting clients are compressed).
    headers = {"Authorization": f"Bearer {tokens[role]}", "Accept-Encoding": "identity"}
    case.call_and_validate(headers=headers, checks=CHECKS)
