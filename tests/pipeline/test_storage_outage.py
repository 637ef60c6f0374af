"""The object store going away in the middle of a job that writes to it (the loopback S3 server stopped):
the job fails saying the store could not be reached, nothing half-written looks complete, and the job
resumes when the store is back."""

from __future__ import annotations

import pytest

from annotate.models import Generator, Image
from core.jobs import job_retry, job_run
from core.models import Job
from core.storage_io import IncompleteFolder, fetch_folder, folder_complete, store_folder
from pipeline.jobs import GenerationParams
from pipeline.services.demo import DEMO_GENERATOR, demo_campaign_seed
from scoring.services.judgments_io import judgments_export_store
from tests.helpers import fresh

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]  # the heartbeat sees the job


def stop_after(storage, server, saves: int, monkeypatch) -> list[str]:
    """Stop the server just before the storage's save number `saves` + 1; returns the names saved."""
    saved: list[str] = []
    save = storage.save

    def counting(name, content, max_length=None):
        if len(saved) == saves:
            server.stop()
        stored = save(name, content, max_length=max_length)
        saved.append(stored)
        return stored

    monkeypatch.setattr(storage, "save", counting)
    return saved


def objects(server) -> set[str]:
    listed = server.client().list_objects_v2(Bucket=server.bucket)
    return {item["Key"] for item in listed.get("Contents", [])}


def test_a_generation_job_fails_clearly_when_the_store_stops_and_resumes_when_it_is_back(
    aspects, s3_storage, s3_server, monkeypatch
):
    campaign = demo_campaign_seed(n_prompts=3)
    generator = Generator.objects.get(name=DEMO_GENERATOR)
    params = GenerationParams(
        campaign_id=campaign.pk, generator_ids=[generator.pk], images_per_prompt=2, seed=5
    )
    job = Job.objects.create(kind="generate", campaign=campaign, params=params.to_json())
    saved = stop_after(s3_storage, s3_server, 2, monkeypatch)

    assert job_run(job_id=job.pk) == Job.Status.FAILED
    failed = fresh(job.pk)
    assert failed.error.startswith("object storage unavailable (EndpointConnectionError")
    assert s3_server.endpoint_url in failed.error and "retry the job" in failed.error
    assert s3_server.secret_key not in failed.error + failed.log
    # Every image row the job recorded has its object: a row is written only after its object.
    assert len(saved) == 2 and Image.objects.count() == 2
    monkeypatch.undo()

    s3_server.start()  # the store is back (same port, same objects)
    assert set(Image.objects.values_list("file", flat=True)) <= objects(s3_server)
    job_retry(job=failed)
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED
    done = fresh(job.pk)
    assert done.result["images_created"] == 4 and done.result["images_skipped"] == 2, done.result
    assert Image.objects.count() == 6
    assert set(Image.objects.values_list("file", flat=True)) <= objects(s3_server)


def test_a_folder_cut_off_by_the_outage_is_not_complete_until_written_again(
    s3_storage, s3_server, monkeypatch, tmp_path
):
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    for i in range(3):
        (folder / f"part-{i}.bin").write_bytes(bytes([i]) * 1000)
    stop_after(s3_storage, s3_server, 1, monkeypatch)
    with pytest.raises(Exception, match="Could not connect"):
        store_folder(folder, "checkpoints/cut")
    monkeypatch.undo()
    s3_server.start()
    assert objects(s3_server) == {"checkpoints/cut/part-0.bin"}  # a part, and no COMPLETE marker
    assert not folder_complete("checkpoints/cut")
    with pytest.raises(IncompleteFolder):
        fetch_folder("checkpoints/cut", tmp_path / "read")
    store_folder(folder, "checkpoints/cut")
    assert sorted(p.name for p in fetch_folder("checkpoints/cut").iterdir()) == [
        "part-0.bin",
        "part-1.bin",
        "part-2.bin",
    ]


def test_an_export_during_the_outage_stores_nothing(aspects, s3_storage, s3_server):
    campaign = demo_campaign_seed(n_prompts=1)
    s3_server.stop()
    try:
        with pytest.raises(Exception, match="Could not connect"):
            judgments_export_store(campaign=campaign)
    finally:
        s3_server.start()
    assert not any(key.startswith("exports/") for key in objects(s3_server))
    name, _ = judgments_export_store(campaign=campaign)
    assert name in objects(s3_server)
