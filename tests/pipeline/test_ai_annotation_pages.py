"""The AI judge pages: staff only; the estimate follows the selection; launching creates the job."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from core.jobs import job_run
from core.models import Job
from pipeline.models import AICall, AIJudgeConfig
from pipeline.services.annotation import annotation_start
from pipeline.services.judges import demo_judge_ensure
from tests.factories import AdminFactory, AIJudgeConfigFactory, CampaignFactory, PairFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory())
    return client


@pytest.fixture
def campaign(aspects):
    campaign = CampaignFactory(aspects=aspects)
    for _ in range(4):
        PairFactory(campaign=campaign)
    return campaign


def test_pages_are_for_staff_only(client, campaign):
    judge = demo_judge_ensure()
    job = annotation_start(campaign=campaign, judge_config=judge)
    urls = [
        reverse("pipeline:ai-judges"),
        reverse("pipeline:ai-annotate"),
        reverse("pipeline:ai-annotate-estimate"),
        reverse("pipeline:ai-job-calls", args=[job.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 302  # to login
    client.force_login(UserFactory())
    for url in urls:
        assert client.get(url).status_code == 403


def test_estimate_updates_with_the_selection(admin_client, campaign):
    judge = demo_judge_ensure()
    url = reverse("pipeline:ai-annotate-estimate")
    common = {"campaign": campaign.pk, "judge": judge.pk, "execution": "online", "seed": 0}
    page = admin_client.get(url, {**common, "selection": "all"}, HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="estimate"' in text and "<dt>Calls</dt><dd>4" in text and "simulated" in text
    sample = admin_client.get(url, {**common, "selection": "sample", "sample_n": 2}).content.decode()
    assert "<dt>Calls</dt><dd>2" in sample
    missing_n = admin_client.get(url, {**common, "selection": "sample"}).content.decode()
    assert "Give the number of pairs to sample." in missing_n


def test_launch_then_failures_and_call_pages(admin_client, campaign):
    judge = demo_judge_ensure()
    form = admin_client.get(reverse("pipeline:ai-annotate"), {"judge": judge.pk, "campaign": campaign.slug})
    assert form.status_code == 200 and "<dt>Calls</dt><dd>4" in form.content.decode()
    response = admin_client.post(
        reverse("pipeline:ai-annotate"),
        {"campaign": campaign.pk, "judge": judge.pk, "selection": "all", "execution": "online", "seed": 0},
    )
    job = Job.objects.get(kind="annotate")
    assert response.status_code == 302 and response["Location"] == reverse(
        "pipeline:ai-job-calls", args=[job.pk]
    )
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    call = AICall.objects.filter(job=job).first()
    AICall.objects.filter(pk=call.pk).update(
        status=AICall.Status.FAILED, error_reason="invalid_json", raw_response='{"aspects": {"aesth'
    )
    failures = admin_client.get(reverse("pipeline:ai-job-calls", args=[job.pk])).content.decode()
    assert "invalid_json" in failures and "{&quot;aspects&quot;: {&quot;aesth" in failures
    detail = admin_client.get(reverse("pipeline:ai-call-detail", args=[call.pk])).content.decode()
    assert "Rendered prompt" in detail and "&lt;image: A = " in detail
    judges = admin_client.get(reverse("pipeline:ai-judges")).content.decode()
    assert "simulated-judge" in judges and "simulated</span>" in judges


def test_batch_execution_needs_an_openai_judge(admin_client, campaign):
    judge = demo_judge_ensure()
    response = admin_client.post(
        reverse("pipeline:ai-annotate"),
        {"campaign": campaign.pk, "judge": judge.pk, "selection": "all", "execution": "batch", "seed": 0},
    )
    assert (
        response.status_code == 200
        and "The Batch API needs an OpenAI-compatible judge." in response.content.decode()
    )
    assert not Job.objects.exists()


def test_cost_is_shown_per_call_per_job_and_per_judge(admin_client, campaign):
    judge = AIJudgeConfigFactory(provider=AIJudgeConfig.Provider.OPENAI, model="gpt-4o", api_key_env="VP_KEY")
    job = annotation_start(campaign=campaign, judge_config=judge)
    pairs = list(campaign.pairs.order_by("pk"))
    for pair, cost in zip(pairs[:2], ("0.012300", "0.004500"), strict=True):
        AICall.objects.create(
            job=job,
            judge=judge,
            pair=pair,
            prompt=pair.prompt,
            status=AICall.Status.SUCCEEDED,
            prompt_tokens=1000,
            completion_tokens=200,
            cost_usd=Decimal(cost),
        )
    calls = admin_client.get(
        reverse("pipeline:ai-job-calls", args=[job.pk]), {"status": "all"}
    ).content.decode()
    assert "$0.012300" in calls and "$0.004500" in calls  # per call
    assert "$0.0168" in calls  # the job's total
    assert "$0.0168" in admin_client.get(reverse("pipeline:ai-judges")).content.decode()  # the judge's total


def test_a_single_judge_is_preselected_so_the_estimate_shows_at_once(admin_client, campaign):
    demo_judge_ensure()
    page = admin_client.get(reverse("pipeline:ai-annotate")).content.decode()
    assert "<dt>Calls</dt><dd>4" in page
    AIJudgeConfigFactory()  # with two judges, choosing one (and its spending) is up to the admin
    assert "<dt>Calls</dt>" not in admin_client.get(reverse("pipeline:ai-annotate")).content.decode()
