"""python manage.py import_judgments FILE [--dry-run]: import JSONL judgments, all or nothing."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scoring.services.judgments_io import JudgmentImportError, judgments_import


class Command(BaseCommand):
    help = (
        "Import judgments from a JSONL file (docs/judgments-jsonl.md). Nothing is stored if any line is bad."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="JSONL file, or - for standard input")
        parser.add_argument("--dry-run", action="store_true", help="check the file and report, store nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        try:
            if path == "-":
                result = judgments_import(lines=sys.stdin, dry_run=options["dry_run"])
            else:
                with open(path, encoding="utf-8") as handle:
                    result = judgments_import(lines=handle, dry_run=options["dry_run"])
        except FileNotFoundError as exc:
            raise CommandError(f"No such file: {path}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text: {exc}") from exc
        except JudgmentImportError as exc:
            raise CommandError(f"{len(exc.errors)} error(s); nothing was imported.\n{exc}") from exc
        verb = "would create" if options["dry_run"] else "created"
        self.stdout.write(
            f"{result.lines} lines: {verb} {result.created} judgments, {result.unchanged} already present; "
            f"{result.annotators_created} new annotators"
        )
