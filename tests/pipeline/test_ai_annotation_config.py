"""AI judge configuration: keys stay out of the database, templates fit the mode, limits reach the job."""

from __future__ import annotations

import time

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from core.jobs import job_run
from core.models import Job
from pipeline.models import AIJudgeConfig
from pipeline.services import annotation
from pipeline.services.annotation import annotation_start
from pipeline.services.judges import judge_from_config
from pipeline.services.polish import polish_start
from tests.factories import AdminFactory, AIJudgeConfigFactory, CampaignFactory, PairFactory

pytestmark = pytest.mark.django_db

PASTED_KEY = "sk-proj-abcDEF123456"


def judge_config(**fields) -> AIJudgeConfig:
    defaults = {"name": "gpt", "provider": AIJudgeConfig.Provider.OPENAI, "model": "gpt-4o"}
    return AIJudgeConfig(**{**defaults, **fields})


def test_a_pasted_key_is_refused_as_the_key_variable_and_never_echoed():
    config = judge_config(api_key_env=PASTED_KEY)
    with pytest.raises(ValidationError) as raised:
        config.full_clean()
    assert "api_key_env" in raised.value.message_dict
    assert PASTED_KEY not in str(raised.value)
    judge_config(api_key_env="OPENAI_API_KEY").full_clean()  # a real variable name is fine


def test_the_admin_form_refuses_a_pasted_key(client):
    client.force_login(AdminFactory(is_superuser=True))
    page = client.post(
        reverse("admin:pipeline_aijudgeconfig_add"),
        {
            "name": "gpt",
            "provider": "openai",
            "model": "gpt-4o",
            "api_key_env": PASTED_KEY,
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
        },
    )
    assert page.status_code == 200 and "never the key itself" in page.content.decode()
    assert not AIJudgeConfig.objects.exists()


def test_a_row_holding_a_key_fails_without_naming_it():
    config = AIJudgeConfigFactory(provider=AIJudgeConfig.Provider.OPENAI, api_key_env=PASTED_KEY)
    with pytest.raises(RuntimeError) as raised:
        judge_from_config(config)
    assert PASTED_KEY not in str(raised.value)


def test_polishing_refuses_a_pasted_key_before_anything_is_stored(aspects):
    campaign = CampaignFactory(aspects=aspects)
    with pytest.raises(ValueError) as raised:
        polish_start(campaign=campaign, model="m", base_url="http://127.0.0.1:9/v1", api_key_env=PASTED_KEY)
    assert PASTED_KEY not in str(raised.value)
    assert not Job.objects.exists()


def test_the_polish_form_refuses_a_pasted_key(client, aspects):
    client.force_login(AdminFactory())
    campaign = CampaignFactory(aspects=aspects)
    page = client.post(
        reverse("pipeline:prompt-polish"),
        {
            "campaign": campaign.pk,
            "model": "m",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key_env": PASTED_KEY,
        },
    )
    assert page.status_code == 200 and "never the key itself" in page.content.decode()
    assert not Job.objects.exists()


def test_secrets_in_options_are_refused():
    with pytest.raises(ValidationError) as raised:
        judge_config(options={"api_key": "x"}).full_clean()
    assert "options" in raised.value.message_dict
    judge_config(options={"max_output_tokens": 512, "max_tokens_param": "max_completion_tokens"}).full_clean()


def test_the_template_must_fit_the_mode():
    config = judge_config(mode=AIJudgeConfig.Mode.GROUP)  # field default is the pair template
    config.full_clean()
    assert config.template_version == "vp-group-v1"
    with pytest.raises(ValidationError, match="unknown|Unknown"):
        judge_config(template_version="vp-pair-v9").full_clean()
    config = judge_config(mode=AIJudgeConfig.Mode.PAIR, template_version="vp-group-v1")
    with pytest.raises(ValidationError, match="group-mode template"):
        config.full_clean()


def test_local_models_go_to_the_gpu_queue_and_api_judges_to_the_ai_queue(aspects):
    campaign = CampaignFactory(aspects=aspects)
    PairFactory(campaign=campaign)
    local = AIJudgeConfigFactory(provider=AIJudgeConfig.Provider.LOCAL, model="/models/qwen2-vl")
    api = AIJudgeConfigFactory(provider=AIJudgeConfig.Provider.OPENAI, model="gpt-4o")
    assert annotation_start(campaign=campaign, judge_config=local).queue == "gpu"
    assert annotation_start(campaign=campaign, judge_config=api).queue == "ai"


def test_the_job_applies_the_judges_concurrency_and_rate_limits(aspects, monkeypatch):
    campaign = CampaignFactory(aspects=aspects)
    for _ in range(6):
        PairFactory(campaign=campaign)
    judge = AIJudgeConfigFactory(concurrency=3, requests_per_minute=120, tokens_per_minute=90_000)
    seen: dict = {}
    real_iter_batch = annotation.iter_batch_ready

    def spy(requests, judge_, **kwargs):
        seen.update(kwargs)
        return real_iter_batch(requests, judge_, **kwargs)

    monkeypatch.setattr(annotation, "iter_batch_ready", spy)
    job = annotation_start(campaign=campaign, judge_config=judge)
    started = time.monotonic()
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    elapsed = time.monotonic() - started
    assert (seen["concurrency"], seen["requests_per_minute"], seen["tokens_per_minute"]) == (3, 120, 90_000)
    # 120 requests a minute = 2 a second with a burst of 2: the other 4 calls wait at least 0.5 s each.
    assert elapsed >= 1.8
    assert Job.objects.get(pk=job.pk).progress_done == 6
