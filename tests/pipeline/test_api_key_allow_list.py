"""Only variables an operator declared as model API keys (AI_API_KEY_ENV_NAMES) can be sent to an endpoint.

A staff user configures a judge's base URL and the *name* of its key variable; naming DATABASE_URL or
DJANGO_SECRET_KEY must be refused in the form, the admin, the service and when the call is made.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.urls import reverse

from core.jobs import job_run
from core.models import Job
from pipeline.mllm.loopback_server import LoopbackServer
from pipeline.models import AIJudgeConfig
from pipeline.services.annotation import annotation_start
from pipeline.services.judges import judge_from_config
from pipeline.services.polish import polish_start
from tests.factories import AdminFactory, AIJudgeConfigFactory, CampaignFactory, PairFactory

pytestmark = pytest.mark.django_db

SECRETS = ["DATABASE_URL", "DJANGO_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "CELERY_BROKER_URL"]


@pytest.fixture
def secret_env(monkeypatch):
    for name in SECRETS:
        monkeypatch.setenv(name, f"secret-value-of-{name}")
    return SECRETS


def admin_judge_form(api_key_env: str) -> dict:
    return {
        "name": "exfil",
        "provider": "openai",
        "model": "gpt-4o",
        "base_url": "https://attacker.example/v1",
        "api_key_env": api_key_env,
        "template_version": "vp-pair-v1",
        "temperature": 0,
        "mode": "pair",
        "concurrency": 8,
        "max_image_side": 768,
        "timeout_s": 60,
        "max_attempts": 4,
        "price_per_1k_prompt_tokens": 0,
        "price_per_1k_completion_tokens": 0,
        "options": "{}",
    }


@pytest.mark.parametrize("name", SECRETS)
def test_the_model_refuses_undeclared_variables(name):
    config = AIJudgeConfig(name="x", provider="openai", model="gpt-4o", api_key_env=name)
    with pytest.raises(ValidationError) as raised:
        config.full_clean()
    assert "not declared" in " ".join(raised.value.message_dict["api_key_env"])


def test_the_declared_list_comes_from_the_setting(settings):
    settings.AI_API_KEY_ENV_NAMES = ("MY_LAB_KEY",)
    AIJudgeConfig(name="x", provider="openai", model="m", api_key_env="MY_LAB_KEY").full_clean()
    with pytest.raises(ValidationError):
        AIJudgeConfig(name="y", provider="openai", model="m", api_key_env="OPENAI_API_KEY").full_clean()


def test_the_setting_is_read_from_the_environment():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "AI_API_KEY_ENV_NAMES": "A_KEY,B_KEY",
    }
    code = "import django; django.setup(); from django.conf import settings; print(settings.AI_API_KEY_ENV_NAMES)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "('A_KEY', 'B_KEY')"
    assert "OPENAI_API_KEY" in django_settings.AI_API_KEY_ENV_NAMES  # the default list


def test_the_admin_refuses_a_judge_naming_the_secret_key(client):
    client.force_login(AdminFactory(is_superuser=True))
    page = client.post(reverse("admin:pipeline_aijudgeconfig_add"), admin_judge_form("DJANGO_SECRET_KEY"))
    assert page.status_code == 200 and "not declared as a model API key variable" in page.content.decode()
    assert not AIJudgeConfig.objects.exists()
    ok = client.post(reverse("admin:pipeline_aijudgeconfig_add"), admin_judge_form("OPENAI_API_KEY"))
    assert ok.status_code == 302 and AIJudgeConfig.objects.get().api_key_env == "OPENAI_API_KEY"


def test_the_polish_form_refuses_an_undeclared_variable(client, aspects):
    client.force_login(AdminFactory())
    campaign = CampaignFactory(aspects=aspects)
    page = client.post(
        reverse("pipeline:prompt-polish"),
        {
            "campaign": campaign.pk,
            "model": "m",
            "base_url": "https://attacker.example/v1",
            "api_key_env": "AWS_SECRET_ACCESS_KEY",
        },
    )
    assert page.status_code == 200 and "not declared" in page.content.decode()
    assert not Job.objects.exists()


def test_the_polish_service_refuses_an_undeclared_variable(aspects):
    campaign = CampaignFactory(aspects=aspects)
    with pytest.raises(ValueError, match="not declared"):
        polish_start(
            campaign=campaign,
            model="m",
            base_url="https://attacker.example/v1",
            api_key_env="CELERY_BROKER_URL",
        )
    assert not Job.objects.exists()


def test_a_stored_judge_naming_the_database_url_is_refused_by_the_service():
    # Rows written before the allow-list existed (or by code that skipped validation) are still refused.
    config = AIJudgeConfigFactory(provider=AIJudgeConfig.Provider.OPENAI, api_key_env="DATABASE_URL")
    with pytest.raises(RuntimeError, match="not declared"):
        judge_from_config(config)


def test_an_annotation_job_with_such_a_judge_fails_and_sends_nothing(aspects, secret_env):
    campaign = CampaignFactory(aspects=aspects)
    PairFactory(campaign=campaign)
    with LoopbackServer() as server:
        config = AIJudgeConfigFactory(
            provider=AIJudgeConfig.Provider.OPENAI,
            model="loopback-judge",
            base_url=server.base_url,
            api_key_env="DATABASE_URL",
        )
        job = annotation_start(campaign=campaign, judge_config=config)
        assert job_run(job_id=job.pk) == Job.Status.FAILED
        assert server.requests == []
    job.refresh_from_db()
    assert "not declared" in job.error and "secret-value-of" not in job.error
