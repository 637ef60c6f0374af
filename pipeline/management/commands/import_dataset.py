"""manage.py import_dataset SHARD.parquet --campaign-name NAME [--now]: import a Pick-a-Pic-shaped file.

For files too large to upload through the page: the file is copied into storage (``imports/``) and a
``dataset_import`` job is queued, or run here with ``--now``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Campaign
from pipeline.datasets import DatasetError


class Command(BaseCommand):
    help = "Import a Pick-a-Pic-shaped parquet file (or a DPO parquet exported by this app) into a campaign."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path")
        parser.add_argument("--campaign", help="slug of an existing campaign")
        parser.add_argument("--campaign-name", default="", help="name of the campaign to create")
        parser.add_argument("--aspect", default="overall")
        parser.add_argument(
            "--format", default="", help="pickapic, imagereward or hpdv2 (default: from the name)"
        )
        parser.add_argument("--now", action="store_true", help="run the job in this process")

    def handle(self, *args: Any, **options: Any) -> None:
        from core.jobs import job_run
        from core.models import Job
        from pipeline.services.datasets import dataset_import_start

        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        campaign = None
        if options["campaign"]:
            campaign = Campaign.objects.filter(slug=options["campaign"]).first()
            if campaign is None:
                raise CommandError(f"no campaign with slug {options['campaign']!r}")
        elif not options["campaign_name"]:
            raise CommandError("give --campaign SLUG or --campaign-name NAME")
        try:
            with path.open("rb") as handle:
                job = dataset_import_start(
                    upload=handle,
                    filename=path.name,
                    campaign=campaign,
                    campaign_name=options["campaign_name"],
                    aspect=options["aspect"],
                    format=options["format"],
                )
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        if not options["now"]:
            self.stdout.write(f"queued import job {job.pk}")
            return
        status = job_run(job_id=job.pk)
        job = Job.objects.get(pk=job.pk)
        if status != Job.Status.SUCCEEDED:
            raise CommandError(f"import job {job.pk} {status}: {job.error}")
        self.stdout.write(f"import job {job.pk}: {job.result}")
