"""A data set import and an export through the real Celery worker on the test Redis broker."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest
from django.core.files.storage import default_storage

from annotate.models import Campaign, Judgment
from core.models import Job
from pipeline.jobs import DatasetExportParams
from pipeline.services.datasets import dataset_export_start, dataset_import_start
from tests.helpers import fresh, wait_for
from tests.pipeline.datasets_files import sample_rows, write_parquet


@pytest.mark.django_db(transaction=True)
def test_an_import_and_an_export_run_on_the_worker(worker, aspects, tmp_path):
    path = write_parquet(tmp_path / "shard.parquet", sample_rows())
    with path.open("rb") as handle:
        job = dataset_import_start(upload=handle, filename="shard.parquet", campaign_name="Via the worker")
    job = wait_for(lambda: (j := fresh(job.pk)).is_finished and j, timeout=120)
    assert job.status == Job.Status.SUCCEEDED, (job.error, job.log)
    assert "checking 6 rows" in job.log and job.progress_done == job.progress_total == 12
    campaign = Campaign.objects.get(name="Via the worker")
    assert Judgment.objects.filter(pair__campaign=campaign).count() == 5

    export = dataset_export_start(params=DatasetExportParams(campaign_ids=[campaign.pk], ties="half"))
    export = wait_for(lambda: (j := fresh(export.pk)).is_finished and j, timeout=120)
    assert export.status == Job.Status.SUCCEEDED, (export.error, export.log)
    with default_storage.open(export.result["file"], "rb") as handle:
        table = pq.read_table(io.BytesIO(handle.read()))
    # Per pair the majority of the imported raters: fox 1-2 (2 to 1), fox 2-3 (a tie), teapot.
    assert table.num_rows == 3 and sorted(table.column("label_0").to_pylist()).count(0.5) == 1
