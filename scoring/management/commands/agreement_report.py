"""python manage.py agreement_report SLUG [--json]: compute a campaign's agreement report now and cache it."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.models import Annotator, Campaign
from scoring.report_params import DEFAULT_MAJORITY_RULE, MAJORITY_RULE_NAMES, ReportParameters
from scoring.services.reports import report_compute


class Command(BaseCommand):
    help = "Compute the agreement report of a campaign on current data (schema: docs/report-schema.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("--json", action="store_true", help="print the full report as JSON")
        parser.add_argument("--include-flagged", action="store_true", help="count flagged workers too")
        parser.add_argument("--include-blocked", action="store_true", help="count blocked workers too")
        parser.add_argument(
            "--aspect", action="append", default=None, help="aspect key (repeatable; default all)"
        )
        parser.add_argument(
            "--ai-judge", action="append", default=None, help="AI judge name (repeatable; default all)"
        )
        parser.add_argument(
            "--also-campaign", action="append", default=[], help="pool another campaign's pairs"
        )
        parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
        parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
        parser.add_argument(
            "--majority-rule",
            choices=MAJORITY_RULE_NAMES,
            default=DEFAULT_MAJORITY_RULE,
            help="human majority of a split pair: strict (left out, the default) or tie",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slugs = [options["campaign"], *options["also_campaign"]]
        campaigns = {c.slug: c for c in Campaign.objects.filter(slug__in=slugs)}
        missing = [s for s in slugs if s not in campaigns]
        if missing:
            raise CommandError(f"Unknown campaign(s): {', '.join(missing)}")
        judge_ids = None
        if options["ai_judge"] is not None:
            judges = dict(
                Annotator.objects.filter(kind="ai", name__in=options["ai_judge"]).values_list("name", "pk")
            )
            unknown = [n for n in options["ai_judge"] if n not in judges]
            if unknown:
                raise CommandError(f"Unknown AI judge(s): {', '.join(unknown)}")
            judge_ids = tuple(judges.values())
        campaign = campaigns[options["campaign"]]
        params = ReportParameters(
            campaign_ids=tuple(campaigns[s].pk for s in dict.fromkeys(slugs)),
            aspect_keys=tuple(options["aspect"]) if options["aspect"] else None,
            include_flagged=options["include_flagged"],
            include_blocked=options["include_blocked"],
            ai_judge_ids=judge_ids,
            n_resamples=options["resamples"],
            seed=options["seed"],
            majority_rule=options["majority_rule"],
        )
        data = report_compute(campaign=campaign, params=params).data
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
            return
        totals = data["totals"]
        self.stdout.write(
            f"{campaign.name}: {totals['n_judgments']} judgments, {totals['n_pairs']} pairs, "
            f"{totals['n_humans']} humans, {totals['n_ai_judges']} AI judges"
        )
        for aspect in data["aspects"]:
            human = aspect["human"]["agreement"]["with_ties"]
            self.stdout.write(f"  {aspect['key']}: human-human {_fmt(human)}")
            for entry in aspect["ai"]:
                verdict = entry["verdict"]["with_ties"]
                self.stdout.write(
                    f"    {entry['judge']['name']}: vs majority {_fmt(entry['agreement_with_majority']['with_ties'])}, "
                    f"kappa {_fmt(entry['kappa'])}, verdict: {verdict['label']} "
                    f"(difference {_fmt(verdict['difference'])}, {verdict['n_items']} pairs)"
                )


def _fmt(figure: dict[str, Any]) -> str:
    if figure.get("estimate") is None:
        return "n/a"
    return f"{figure['estimate']:.3f} [{figure['low']:.3f}, {figure['high']:.3f}]"
