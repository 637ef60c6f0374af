"""Pages: who may see what, and the htmx partials."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotate.services.campaigns import crowdworker_create
from core.models import Job
from tests.factories import AdminFactory, CampaignFactory, JobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory())
    return client


@pytest.fixture
def worker_client(client):
    client.force_login(crowdworker_create(username="w1", password="a-long-password-1"))
    return client


def test_anonymous_users_are_sent_to_login(client):
    for url in [reverse("annotate:home"), reverse("core:job-list")]:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("annotate:login"))


@pytest.mark.parametrize("name", ["core:job-list", "admin:index"])
def test_crowdworkers_never_reach_admin_pages(worker_client, name):
    response = worker_client.get(reverse(name))
    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert "login" in response.url


def test_crowdworkers_cannot_cancel_jobs_or_see_campaign_admin_pages(worker_client, aspects):
    job = JobFactory()
    assert worker_client.post(reverse("core:job-cancel", args=[job.pk])).status_code == 403
    assert Job.objects.get(pk=job.pk).cancel_requested is False
    campaign = CampaignFactory()
    assert worker_client.get(reverse("annotate:campaign-detail", args=[campaign.slug])).status_code == 403


def test_worker_home_lists_active_campaigns_only(worker_client, aspects):
    CampaignFactory(name="Open one", status="active")
    CampaignFactory(name="Draft one", status="draft")
    body = worker_client.get(reverse("annotate:home")).content.decode()
    assert "Open one" in body and "Draft one" not in body


def test_job_list_polls_only_while_jobs_run_and_htmx_gets_the_partial(admin_client):
    JobFactory(status=Job.Status.SUCCEEDED)
    page = admin_client.get(reverse("core:job-list")).content.decode()
    assert 'hx-trigger="every 2s"' not in page
    running = JobFactory(status=Job.Status.RUNNING, progress_total=10, progress_done=4)
    page = admin_client.get(reverse("core:job-list")).content.decode()
    assert 'hx-trigger="every 2s"' in page and "<html" in page
    partial = admin_client.get(reverse("core:job-list"), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and f'id="job-{running.pk}"' in partial and "4/10" in partial


def test_cancel_button_marks_the_job(admin_client):
    job = JobFactory(status=Job.Status.RUNNING)
    response = admin_client.post(reverse("core:job-cancel", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "stopping" in response.content.decode()
    assert Job.objects.get(pk=job.pk).cancel_requested is True


def test_pending_job_cancel_finishes_it_at_once(admin_client):
    job = JobFactory(status=Job.Status.PENDING)
    admin_client.post(reverse("core:job-cancel", args=[job.pk]))
    assert Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED


def test_job_detail_and_campaign_pages_render(admin_client, aspects):
    job = JobFactory(log="line one\n", error="")
    assert "line one" in admin_client.get(reverse("core:job-detail", args=[job.pk])).content.decode()
    campaign = CampaignFactory(name="Shown campaign")
    body = admin_client.get(reverse("annotate:campaign-detail", args=[campaign.slug])).content.decode()
    assert "Shown campaign" in body and "Prompt following" in body
