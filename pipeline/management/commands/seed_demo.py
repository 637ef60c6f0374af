"""Seed the demo: an admin, a crowdworker, the demo campaign, and a generation job for its images.

With --wait it also waits for the images and the simulated judge's labels, then lets the simulated
crowdworkers label part of the campaign (make demo does this before it says the server is ready).
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotate.models import Generator
from annotate.services.campaigns import crowdworker_create
from core.jobs import FollowUp, job_create
from core.models import Job
from pipeline.jobs import ANNOTATE, GENERATE, GenerationParams
from pipeline.services.annotation import annotation_params, annotation_title
from pipeline.services.demo import (
    DEMO_GENERATOR,
    DEMO_GENERATOR_GLITCHY,
    demo_campaign_seed,
    demo_crowd_simulate,
    demo_jobs_wait,
)
from pipeline.services.judges import demo_judge_ensure


class Command(BaseCommand):
    help = "Create demo accounts and the demo campaign, and queue the job that renders its images."

    def add_arguments(self, parser):
        parser.add_argument("--prompts", type=int, default=24)
        parser.add_argument(
            "--images-per-prompt", type=int, default=2, help="Per demo generator (there are two)."
        )
        parser.add_argument("--gold-pairs", type=int, default=8, help="Fidelity gold pairs to mix in.")
        parser.add_argument("--admin-password", default=None, help="Default: a new random password.")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Wait for the jobs (a worker must be running), then let the simulated crowd label.",
        )
        parser.add_argument("--timeout", type=float, default=900.0, help="Seconds to wait for the jobs.")

    def handle(self, *args, **options):
        user_model = get_user_model()
        password = options["admin_password"] or secrets.token_urlsafe(9)
        admin, _ = user_model.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        worker_password = "label-" + secrets.token_hex(3)
        crowdworker_create(username="worker", password=worker_password)
        job = None

        with transaction.atomic():
            campaign = demo_campaign_seed(n_prompts=options["prompts"])
            generators = Generator.objects.filter(name__in=[DEMO_GENERATOR, DEMO_GENERATOR_GLITCHY])
            judge = demo_judge_ensure()
            # Then the simulated judge labels the pairs, so AI labels show up within a minute.
            annotate_then = FollowUp(
                kind=ANNOTATE,
                title=annotation_title(campaign=campaign, judge_config=judge),
                params=annotation_params(campaign=campaign, judge_config=judge, selection="unlabelled"),
            )
            already = Job.objects.filter(campaign=campaign, kind=GENERATE, status=Job.Status.SUCCEEDED)
            if not already.exists() or not campaign.pairs.exists():
                job = job_create(
                    kind=GENERATE,
                    title=f"Render demo images for {campaign.name}",
                    campaign=campaign,
                    queue="default",
                    params=GenerationParams(
                        campaign_id=campaign.pk,
                        generator_ids=sorted(g.pk for g in generators),
                        images_per_prompt=options["images_per_prompt"],
                        seed=1,
                        pair_strategy="all",
                        fidelity_gold_pairs=options["gold_pairs"],
                    ),
                    follow_ups=[annotate_then],
                )
                self.stdout.write(f"Queued job {job.pk}: rendering demo images (watch it on /jobs/).")
        if options["wait"]:
            self._wait_and_simulate(campaign=campaign, job=job, timeout=options["timeout"])
        self.stdout.write(self.style.SUCCESS(f"Admin login:        admin / {password}"))
        self.stdout.write(self.style.SUCCESS(f"Crowdworker login:  worker / {worker_password}"))

    def _wait_and_simulate(self, *, campaign, job, timeout: float) -> None:
        from annotate.models import Annotator, Judgment

        if job is not None:
            shown: set[int] = set()

            def on_wait(running) -> None:
                if running.pk not in shown:
                    shown.add(running.pk)
                    self.stdout.write(f"Waiting for job {running.pk}: {running.title} …")

            try:
                demo_jobs_wait(job_id=job.pk, timeout_s=timeout, on_wait=on_wait)
            except RuntimeError as exc:
                raise CommandError(f"The demo jobs did not finish: {exc}") from exc
        simulated = Judgment.objects.filter(pair__campaign=campaign, annotator__is_simulated=True)
        if simulated.exists():
            return
        result = demo_crowd_simulate(campaign=campaign)
        humans = Annotator.objects.filter(is_simulated=True).count()
        self.stdout.write(
            f"{humans} simulated crowdworkers labelled {result.submitted} pairs "
            f"({result.complete_pairs} pairs now complete)."
        )
