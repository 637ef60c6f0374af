"""AI judges in the app: create, edit and duplicate with every field, and the Test button (one real call)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from annotate.models import Judgment
from pipeline.mllm.loopback_server import LoopbackServer, server_error
from pipeline.models import AICall, AIJudgeConfig
from tests.factories import AdminFactory, AIJudgeConfigFactory, CampaignFactory, PairFactory

pytestmark = pytest.mark.django_db
KEY_ENV = "VP_TEST_JUDGE_PAGE_KEY"


@pytest.fixture
def admin_client(client, settings):
    settings.AI_API_KEY_ENV_NAMES = ["OPENAI_API_KEY", KEY_ENV]
    client.force_login(AdminFactory())
    return client


def judge_form(**overrides):
    data = {
        "name": "gpt-4o-mini judge",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": "https://llm.example.org/v1",
        "api_key_env": KEY_ENV,
        "mode": "pair",
        "template_version": "vp-pair-v1",
        "temperature": "0",
        "concurrency": "16",
        "requests_per_minute": "500",
        "tokens_per_minute": "",
        "max_image_side": "512",
        "timeout_s": "30",
        "max_attempts": "3",
        "price_per_1k_prompt_tokens": "0.00015",
        "price_per_1k_completion_tokens": "0.0006",
        "options": '{"image_detail": "low"}',
    }
    data.update(overrides)
    return data


def test_create_edit_and_duplicate_a_judge_with_every_field(admin_client):
    new = admin_client.get(reverse("pipeline:ai-judge-create")).content.decode()
    assert f'<option value="{KEY_ENV}">' in new and "vp-group-v1 (group mode)" in new
    response = admin_client.post(reverse("pipeline:ai-judge-create"), judge_form(swap_trial="on"))
    assert response.status_code == 302, response.content.decode()[:3000]
    judge = AIJudgeConfig.objects.get(name="gpt-4o-mini judge")
    assert response.url == reverse("pipeline:ai-judge-edit", args=[judge.pk])
    assert (judge.api_key_env, judge.concurrency, judge.requests_per_minute, judge.max_attempts) == (
        KEY_ENV,
        16,
        500,
        3,
    )
    assert judge.swap_trial and judge.price_per_1k_completion_tokens == Decimal("0.0006")
    assert judge.options == {"image_detail": "low"}

    edit = admin_client.post(
        reverse("pipeline:ai-judge-edit", args=[judge.pk]),
        judge_form(mode="group", template_version="vp-group-v1", concurrency="4"),
    )
    assert edit.status_code == 302
    judge.refresh_from_db()
    assert (judge.mode, judge.template_version, judge.concurrency, judge.swap_trial) == (
        "group",
        "vp-group-v1",
        4,
        False,
    )

    copy = admin_client.get(reverse("pipeline:ai-judge-duplicate", args=[judge.pk])).content.decode()
    assert 'value="gpt-4o-mini judge (copy)"' in copy and 'value="vp-group-v1" selected' in copy
    assert reverse("pipeline:ai-judge-create") in copy


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"api_key_env": "ANTHROPIC_KEY"}, "api_key_env", "not one of the available choices"),
        ({"template_version": "vp-group-v1"}, "template_version", "group-mode template"),
        ({"options": '{"api_key": "sk-123"}'}, "options", "may not hold secrets"),
        ({"options": "[1, 2]"}, "options", "JSON object"),
        ({"concurrency": "0"}, "concurrency", "at least 1"),
        ({"price_per_1k_prompt_tokens": "-1"}, "price_per_1k_prompt_tokens", "negative"),
        ({"api_key_env": "", "base_url": ""}, "api_key_env", "needs a key"),
    ],
)
def test_judge_settings_that_cannot_work_are_refused(admin_client, overrides, field, words):
    response = admin_client.post(reverse("pipeline:ai-judge-create"), judge_form(**overrides))
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert field in errors and words.lower() in " ".join(errors[field]).lower(), errors
    assert "sk-123" not in response.content.decode()
    assert not AIJudgeConfig.objects.exists()


def test_a_key_variable_outside_the_allowed_list_is_named_when_editing(admin_client):
    legacy = AIJudgeConfigFactory(provider="openai", model="m", api_key_env="OLD_KEY_VAR")
    page = admin_client.get(reverse("pipeline:ai-judge-edit", args=[legacy.pk])).content.decode()
    assert "OLD_KEY_VAR (not allowed any more: choose another)" in page


def test_the_test_button_shows_prompt_raw_answer_and_parsed_judgment(admin_client, aspects):
    campaign = CampaignFactory(name="Judge lab")
    pair = PairFactory(campaign=campaign)
    judge = AIJudgeConfigFactory(name="sim", options={"noise": 0.0})
    response = admin_client.post(
        reverse("pipeline:ai-judge-test", args=[judge.pk]), {"campaign": campaign.pk}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "answered" in body and "Parsed judgment" in body and "prompt_following" in body
    assert pair.prompt.text in body  # the rendered prompt carries the pair's prompt
    assert "&quot;aspects&quot;" in body  # the raw answer
    call = AICall.objects.get(judge=judge)
    assert call.job is None and call.pair_id == pair.pk and call.status == AICall.Status.SUCCEEDED
    assert not Judgment.objects.exists()  # a test never labels


def test_the_test_button_against_a_real_endpoint_and_its_error(admin_client, aspects, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-not-a-real-key")
    campaign = CampaignFactory()
    pair = PairFactory(campaign=campaign)
    with LoopbackServer() as server:
        judge = AIJudgeConfigFactory(
            name="loop",
            provider="openai",
            model="loopback-judge",
            base_url=server.base_url,
            api_key_env=KEY_ENV,
            timeout_s=120,
            max_attempts=5,
            price_per_1k_prompt_tokens=Decimal("0.01"),
        )
        url = reverse("pipeline:ai-judge-test", args=[judge.pk])
        ok = admin_client.post(url, {"campaign": campaign.pk, "pair": pair.pk}, HTTP_HX_REQUEST="true")
        body = ok.content.decode()
        assert "answered" in body and "Parsed judgment" in body and len(server.chat_requests) == 1
        server.script(server_error(500), server_error(500))
        failed = admin_client.post(url, {"campaign": campaign.pk, "pair": pair.pk}, HTTP_HX_REQUEST="true")
        text = failed.content.decode()
        assert "failed" in text and "server_error" in text
        assert len(server.chat_requests) == 2  # one attempt only, whatever the judge's max_attempts says
    calls = AICall.objects.filter(judge=judge).order_by("pk")
    assert [c.status for c in calls] == ["succeeded", "failed"] and calls[0].cost_usd > 0


def test_the_test_button_names_an_unset_key_and_refuses_local_models(admin_client, aspects, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    campaign = CampaignFactory()
    PairFactory(campaign=campaign)
    judge = AIJudgeConfigFactory(
        provider="openai", model="m", base_url="http://127.0.0.1:9/v1", api_key_env=KEY_ENV
    )
    body = admin_client.post(
        reverse("pipeline:ai-judge-test", args=[judge.pk]), {"campaign": campaign.pk}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert f"environment variable {KEY_ENV}" in body and "is not set" in body
    local = AIJudgeConfigFactory(provider="local", model="/models/tiny")
    body = admin_client.post(
        reverse("pipeline:ai-judge-test", args=[local.pk]), {"campaign": campaign.pk}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "GPU worker" in body and not AICall.objects.exists()
    empty = CampaignFactory(name="No pairs")
    body = admin_client.post(
        reverse("pipeline:ai-judge-test", args=[judge.pk]), {"campaign": empty.pk}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "has no pairs yet" in body
