"""Train the demo's VP-Score: a tiny randomly initialised BLIP, on the CPU, on the demo judge's AI labels.

Nothing is downloaded: the backbone is built from a config object and saved to a local folder, which the
worker loads with from_pretrained like any hub checkpoint. The run is small enough to finish in a couple
of minutes on a laptop CPU; the reward model is marked as a demo model on every page. A real backbone is
one hub id away (the training form on /reward-models/).
"""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Campaign
from core.models import Job
from scoring.models import RewardModel
from scoring.services.vpscore import reward_model_train_start

DEMO_MODEL_NAME = "VP-Score demo (tiny random backbone)"
# Small enough for a shared 2-core machine: 9600 pairs through a 2-layer, 32-wide BLIP at 48 px (the
# bench measures ~200 pairs/s per core on such a model). Checkpoints are chosen on the held-out prompts'
# AI labels (the demo's simulated crowd labels too few pairs for that); the accuracy table on the page
# still compares the model with the human majority on those prompts.
DEMO_TRAINING = {
    "max_steps": 600,
    "batch_size": 16,
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "warmup_steps": 20,
    "freeze_fraction": 0.5,
    "eval_every": 100,
    "save_every": 200,
    "log_every": 20,
    "val_fraction": 0.3,
    "validation": "labels",
    "seed": 0,
    "mixed_precision": "no",
    "device": "cpu",
}


class Command(BaseCommand):
    help = "Train the demo's tiny VP-Score on a campaign's AI labels (CPU, random backbone, no download)."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="Campaign slug.")
        parser.add_argument(
            "--backbone-dir", default=".demo/vpscore-tiny-blip", help="Where the tiny backbone is saved."
        )
        parser.add_argument("--image-size", type=int, default=48)
        parser.add_argument("--wait", action="store_true", help="Wait for the training job (a worker runs).")
        parser.add_argument("--timeout", type=float, default=600.0)

    def handle(self, *args, **options):
        from scoring.vpscore.backbone import build_tiny_backbone

        campaign = Campaign.objects.filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign {options['campaign']!r}")
        existing = RewardModel.objects.filter(name=DEMO_MODEL_NAME).first()
        if existing is not None and existing.status == RewardModel.Status.READY:
            self.stdout.write(f"The demo reward model is trained already: /reward-models/{existing.pk}/")
            return
        if existing is not None and existing.job_id and not existing.job.is_finished:
            reward_model = existing  # a restarted demo waits for the run in progress (it resumes)
        else:
            if existing is not None:  # a failed or cancelled run: start again
                if existing.annotator is not None:
                    existing.annotator.delete()  # and its judgments
                existing.delete()
            folder = Path(options["backbone_dir"]).resolve()
            if not (folder / "config.json").is_file():
                build_tiny_backbone("blip", folder, image_size=options["image_size"], hidden=32)
            reward_model = reward_model_train_start(
                name=DEMO_MODEL_NAME,
                backbone=str(folder),
                backbone_kind="blip",
                campaigns=[campaign],
                aspects=list(campaign.aspects.all()),
                label_source="ai",
                hyperparameters=dict(DEMO_TRAINING),
                is_demo=True,
            )
            self.stdout.write(f"Queued job {reward_model.job_id}: training the demo VP-Score (CPU, tiny).")
        if options["wait"]:
            self._wait(reward_model, options["timeout"])

    def _wait(self, reward_model: RewardModel, timeout: float) -> None:
        started = time.monotonic()
        job_id = reward_model.job_id
        if job_id is None:
            raise CommandError("the demo reward model has no training job")
        while True:
            job = Job.objects.get(pk=job_id)
            if job.is_finished:
                break
            if time.monotonic() - started > timeout:
                raise CommandError(f"the demo VP-Score did not finish within {timeout:.0f} s (job {job.pk})")
            time.sleep(1.0)
        if job.status != Job.Status.SUCCEEDED:
            reason = job.error.splitlines()[0] if job.error else "no reason recorded"
            raise CommandError(f"the demo VP-Score job {job.pk} {job.status}: {reason}")
        reward_model.refresh_from_db()
        best = reward_model.metrics.get("best", {})
        accuracy = ", ".join(f"{k} {v:.2f}" for k, v in sorted(best.get("accuracy", {}).items()))
        self.stdout.write(
            f"Demo VP-Score trained in {time.monotonic() - started:.0f} s "
            f"(validation accuracy: {accuracy or 'n/a'}): /reward-models/{reward_model.pk}/"
        )
