"""The data sets page: forms that queue the jobs, the import list, exports with signed download links."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from annotate.models import Campaign
from core.jobs import job_create, job_run
from core.media import media_link_valid
from core.models import Job
from pipeline.jobs import DATASET_EXPORT, DATASET_IMPORT, DatasetExportParams
from tests.factories import AdminFactory, JudgmentFactory, UserFactory
from tests.pipeline.datasets_files import sample_rows, write_parquet

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory())
    return client


def test_workers_cannot_open_the_page(client, aspects):
    client.force_login(UserFactory())
    assert client.get(reverse("pipeline:datasets")).status_code in (302, 403)


def test_the_import_form_queues_a_job_with_the_file_in_storage(admin_client, aspects, tmp_path):
    data = write_parquet(tmp_path / "shard.parquet", sample_rows()).read_bytes()
    response = admin_client.post(
        reverse("pipeline:datasets"),
        {
            "action": "import",
            "imp-file": SimpleUploadedFile("shard.parquet", data),
            "imp-campaign_name": "From the page",
            "imp-aspect": "overall",
            "imp-format": "pickapic",
        },
    )
    assert response.status_code == 302
    job = Job.objects.get(kind=DATASET_IMPORT)
    assert job.params["source_name"].startswith("imports/") and job.params["campaign_name"] == "From the page"
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    page = admin_client.get(reverse("pipeline:datasets")).content.decode()
    assert "5 rows, 3 pairs" in page

    bad = admin_client.post(
        reverse("pipeline:datasets"),
        {
            "action": "import",
            "imp-file": SimpleUploadedFile("x.csv", b"a,b"),
            "imp-campaign_name": "X",
            "imp-aspect": "overall",
            "imp-format": "pickapic",
        },
    )
    assert bad.status_code == 200 and "is neither a .parquet file" in bad.content.decode()


def test_the_export_form_queues_a_job_and_a_finished_export_is_downloadable(admin_client, aspects):
    judgment = JudgmentFactory()
    campaign = judgment.pair.campaign
    refused = admin_client.post(
        reverse("pipeline:datasets"),
        {"action": "export", "exp-format": "dpo_parquet", "exp-campaigns": [campaign.pk], "exp-label_source": "ai",
         "exp-min_human_agreement": "0", "exp-ties": "drop", "exp-images": "bytes"},
    )  # fmt: skip
    assert "Choose the AI judge" in refused.content.decode()
    response = admin_client.post(
        reverse("pipeline:datasets"),
        {"action": "export", "exp-format": "dpo_parquet", "exp-campaigns": [campaign.pk],
         "exp-label_source": "human_majority", "exp-min_human_agreement": "0", "exp-ties": "drop", "exp-images": "bytes"},
    )  # fmt: skip
    assert response.status_code == 302
    job = Job.objects.get(kind=DATASET_EXPORT)
    assert job.params["campaign_ids"] == [campaign.pk]
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    page = admin_client.get(reverse("pipeline:datasets")).content.decode()
    name = Job.objects.get(pk=job.pk).result["file"]
    assert name in page
    start = page.index('href="/media/')
    url = page[start + 6 : page.index('"', start + 6)].replace("&amp;", "&")
    # A signed link (the media view checks it; served files are covered by tests/core's media tests).
    path, query = url.split("?", 1)
    params = dict(part.split("=", 1) for part in query.split("&"))
    assert path == f"/media/{name}"
    assert media_link_valid(name, expires=params["exp"], signature=params["sig"])
    with default_storage.open(name, "rb") as handle:
        assert handle.read(4) == b"PAR1"


def test_the_management_command_imports_a_file_from_disk(aspects, tmp_path):
    path = write_parquet(tmp_path / "shard.parquet", sample_rows())
    out = io.StringIO()
    call_command("import_dataset", str(path), "--campaign-name", "From disk", "--now", stdout=out)
    assert "'rows': 5" in out.getvalue()
    assert Campaign.objects.get(name="From disk").pairs.count() == 3


def test_an_export_job_of_an_unknown_campaign_writes_an_empty_file(aspects):
    job = job_create(kind=DATASET_EXPORT, params=DatasetExportParams(campaign_ids=[999999]))
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    assert Job.objects.get(pk=job.pk).result["rows"] == 0
