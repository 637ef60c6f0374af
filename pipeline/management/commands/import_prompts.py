"""Import prompts from a CSV, JSONL, text or DiffusionDB parquet file, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.models import Campaign
from pipeline.services.prompt_import import FORMATS, UNSAFE_ACTIONS, PromptImportError, prompts_import


class Command(BaseCommand):
    help = "Import prompts from FILE (csv, jsonl, txt or DiffusionDB-style parquet); nothing is written on errors."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Path to the prompt file.")
        parser.add_argument(
            "--campaign", metavar="SLUG", help="Attach the imported prompts to this campaign."
        )
        parser.add_argument("--format", choices=FORMATS, help="File format (default: from the extension).")
        parser.add_argument(
            "--unsafe",
            choices=UNSAFE_ACTIONS,
            default="flag",
            help="Unsafe-word filter: flag prompts (is_unsafe), skip them, or off (default: flag).",
        )
        parser.add_argument(
            "--unsafe-words", metavar="WORDS", help="Comma-separated word list replacing the configured one."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"there is no file at {path}")
        campaign = None
        if options["campaign"]:
            campaign = Campaign.objects.filter(slug=options["campaign"]).first()
            if campaign is None:
                raise CommandError(f"there is no campaign with slug {options['campaign']!r}")
        words = options["unsafe_words"].split(",") if options["unsafe_words"] else None
        try:
            result = prompts_import(
                data=path.read_bytes(),
                filename=path.name,
                format=options["format"],
                campaign=campaign,
                unsafe=options["unsafe"],
                unsafe_words=words,
            )
        except PromptImportError as exc:
            raise CommandError(f"{path.name}: {exc}") from exc
        where = f" into {campaign.name}" if campaign else ""
        self.stdout.write(self.style.SUCCESS(f"Imported {path.name}{where}: {result.summary()}."))
