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
        parser.add_argument(
            "--include-rejected", action="store_true", help="also write rejected judgments (marked rejected)"
        )
        parser.add_argument(
            "--pseudonymise", action="store_true", help="replace human usernames with keyed hashes"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            choices = {
                "campaign_slugs": options["campaign"],
                "include_rejected": options["include_rejected"],
                "pseudonymise": options["pseudonymise"],
            }
            if options["file"] == "-":
                count = judgments_export(out=self.stdout, **choices)
            else:
                with open(options["file"], "w", encoding="utf-8") as handle:
                    count = judgments_export(out=handle, **choices)
                self.stderr.write(f"wrote {count} judgments to {options['file']}")
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
