"""`manage.py demo_vpscore` (run by make demo): a tiny random-backbone VP-Score trained on the CPU through
the real worker on a campaign's AI labels, marked as a demo model; a second run keeps it."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from annotate.models import Judgment
from core.models import Job
from scoring.models import RewardModel
from tests.scoring.test_vpscore_jobs import red_square_campaign

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _work_dir(settings, tmp_path):
    settings.VPSCORE_WORK_DIR = str(tmp_path / "vpscore-work")


@pytest.mark.django_db(transaction=True)
def test_the_demo_model_trains_through_the_worker_and_is_kept(worker, aspects, tmp_path):
    with pytest.raises(CommandError, match="no campaign"):
        call_command("demo_vpscore", "missing")
    campaign, _fidelity, _judge = red_square_campaign(aspects, n_prompts=8, pairs_per_prompt=4)
    out = io.StringIO()
    call_command(
        "demo_vpscore", campaign.slug, "--wait", "--backbone-dir", str(tmp_path / "tiny"), stdout=out
    )
    assert "Demo VP-Score trained in" in out.getvalue()
    reward_model = RewardModel.objects.get()
    assert reward_model.is_demo and reward_model.status == RewardModel.Status.READY
    assert reward_model.job.status == Job.Status.SUCCEEDED and reward_model.job.queue == "gpu"
    assert reward_model.hyperparameters["device"] == "cpu"
    assert Judgment.objects.filter(annotator=reward_model.annotator).count() == campaign.pairs.count()

    again = io.StringIO()
    call_command("demo_vpscore", campaign.slug, "--wait", stdout=again)
    assert "trained already" in again.getvalue() and RewardModel.objects.count() == 1
