"""python manage.py export_judgments [--campaign SLUG ...] [FILE|-]: write judgments as JSONL."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scoring.services.judgments_io import judgments_export


class Command(BaseCommand):
    help = "Export judgments as JSONL (docs/judgments-jsonl.md), one judgment per line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file", nargs="?", default="-", help="output file (default: - for standard output)"
        )
        parser.add_argument("--campaign", action="append", default=[], help="campaign slug (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["file"] == "-":
                count = judgments_export(out=self.stdout, campaign_slugs=options["campaign"])
            else:
                with open(options["file"], "w", encoding="utf-8") as handle:
                    count = judgments_export(out=handle, campaign_slugs=options["campaign"])
                self.stderr.write(f"wrote {count} judgments to {options['file']}")
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
