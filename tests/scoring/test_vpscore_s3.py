"""A reward model's checkpoint through the S3 bucket (loopback server): the training job writes it, the
training worker's disk is wiped, and a scoring job reads it back from the bucket alone."""

from __future__ import annotations

import shutil

import pytest

from annotate.models import Judgment
from core.jobs import job_run
from core.models import Job
from core.storage_io import COMPLETE_MARKER
from scoring.models import RewardModel
from scoring.services.vpscore import reward_model_score_start, reward_model_train_start
from tests.helpers import fresh
from tests.scoring.test_vpscore_jobs import FAST_TRAINING, red_square_campaign
from tests.scoring.test_vpscore_jobs import tiny_blip as tiny_blip  # the module-scoped fixture

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]  # the heartbeat sees the job


def test_a_checkpoint_trained_on_one_worker_scores_on_another_through_the_bucket(
    aspects,
    tiny_blip,
    s3_storage,
    s3_server,
    settings,
    tmp_path,
):
    settings.VPSCORE_WORK_DIR = str(tmp_path / "trainer-disk")
    campaign, fidelity, _judge = red_square_campaign(aspects, n_prompts=6, pairs_per_prompt=3)
    reward_model = reward_model_train_start(
        name="vp-s3",
        backbone=tiny_blip,
        backbone_kind="blip",
        campaigns=[campaign],
        aspects=[fidelity],
        label_source="ai",
        hyperparameters={**FAST_TRAINING, "max_steps": 6, "eval_every": 3, "save_every": 3, "batch_size": 8},
    )
    assert job_run(job_id=reward_model.job_id) == Job.Status.SUCCEEDED, fresh(reward_model.job_id).error
    reward_model.refresh_from_db()
    assert reward_model.status == RewardModel.Status.READY
    keys = {
        item["Key"]
        for item in s3_server.client().list_objects_v2(
            Bucket=s3_server.bucket, Prefix=reward_model.checkpoint
        )["Contents"]
    }
    marker = f"{reward_model.checkpoint}/{COMPLETE_MARKER}"
    assert marker in keys and len(keys) > 2

    # Another worker: the trainer's disk is gone, and the scorer has a disk of its own.
    shutil.rmtree(tmp_path / "trainer-disk")
    settings.VPSCORE_WORK_DIR = str(tmp_path / "scorer-disk")
    Judgment.objects.filter(annotator=reward_model.annotator).delete()
    job = reward_model_score_start(reward_model=reward_model, campaigns=[campaign])
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED, fresh(job.pk).error
    assert Judgment.objects.filter(annotator=reward_model.annotator).count() == campaign.pairs.count()
