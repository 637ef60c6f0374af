"""Agreement report pages: the cached report with charts, a refresh job with live progress, and JSON.

Only POSTs start a report job (the page's Refresh button, or POST report.json); GETs read the cache. Every
link a report page makes (aspect tabs, JSON, progress polling) carries the page's exact filters, so it
shows the same report as the page.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

from django.core.exceptions import BadRequest
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate.models import Campaign
from core.http import HtmxHttpRequest
from core.models import Job
from core.permissions import admin_required, is_admin
from scoring import charts, selectors
from scoring.jobs import REPORT
from scoring.models import Report
from scoring.report_params import (
    DEFAULT_MAJORITY_RULE,
    MAJORITY_RULE_NAMES,
    MajorityRuleName,
    ReportParameters,
)
from scoring.services.reports import REPORT_SCHEMA_VERSION, report_job_running, report_job_start
from scoring.services.vpscore import leaderboard_columns


def _ids(query: Any, name: str) -> set[int]:
    values = query.getlist(name)
    # isascii: "²".isdigit() is true, but int("²") fails.
    if not all(v.isascii() and v.isdigit() for v in values):
        raise BadRequest(f"{name} must be annotator ids (numbers).")
    return {int(v) for v in values}


def _parameters(request: HtmxHttpRequest, campaign: Campaign) -> ReportParameters:
    """Report parameters from the query string (the filter form); defaults give the default report."""
    # A POST carries the filter form; a POST with an empty body (an API client) its query string.
    query = request.POST if request.method == "POST" and request.POST else request.GET
    extra = Campaign.objects.filter(slug__in=query.getlist("campaign")).exclude(pk=campaign.pk)
    ai_ids: tuple[int, ...] | None = None
    if query.get("filtered"):
        chosen = _ids(query, "ai")
        available = {a.pk for a in selectors.ai_judges_of(campaigns=[campaign, *extra])}
        # The form lists the judges it showed; a judge it did not show (one of a campaign just added to
        # the filter) is included until someone unticks it.
        shown = _ids(query, "ai_shown") or available
        chosen |= available - shown
        # Every judge ticked is the default report (same cache entry as no filter at all).
        ai_ids = None if chosen >= available else tuple(sorted(chosen & available))
    # The form's select only offers the known rules; anything else reads as the default.
    asked = query.get("majority_rule", DEFAULT_MAJORITY_RULE)
    rule = cast(MajorityRuleName, asked) if asked in MAJORITY_RULE_NAMES else DEFAULT_MAJORITY_RULE
    return ReportParameters(
        campaign_ids=(campaign.pk, *sorted(c.pk for c in extra)),
        include_flagged=query.get("include_flagged") == "1",
        include_blocked=query.get("include_blocked") == "1",
        ai_judge_ids=ai_ids,
        exclude_simulated=query.get("exclude_simulated") == "1",
        majority_rule=rule,
    )


def _query(params: ReportParameters, campaign: Campaign) -> str:
    """The query string that gives back exactly `params` (for tabs, the JSON link and polling)."""
    pairs: list[tuple[str, Any]] = []
    # "filtered" makes the unticked judges count: only a judge selection needs it. Without a selection it
    # would read as "no judge ticked" and drop every AI judge from the report.
    if params.ai_judge_ids is not None:
        pairs.append(("filtered", "1"))
    if params.include_flagged:
        pairs.append(("include_flagged", "1"))
    if params.include_blocked:
        pairs.append(("include_blocked", "1"))
    if params.exclude_simulated:
        pairs.append(("exclude_simulated", "1"))
    if params.ai_judge_ids is not None:
        pairs += [("ai", i) for i in params.ai_judge_ids]
    if params.majority_rule != DEFAULT_MAJORITY_RULE:
        pairs.append(("majority_rule", params.majority_rule))
    slugs = dict(Campaign.objects.filter(pk__in=params.campaign_ids[1:]).values_list("pk", "slug"))
    pairs += [("campaign", slugs[c]) for c in params.campaign_ids[1:] if c in slugs]
    return urlencode(pairs)


def _cached(campaign: Campaign, params: ReportParameters) -> Report | None:
    # Reports of an older schema lack figures the page and the JSON promise: they count as not cached.
    return (
        Report.objects.filter(campaign=campaign, params_hash=params.key, schema_version=REPORT_SCHEMA_VERSION)
        .order_by("-created_at", "-id")
        .first()
    )


def _figure_row(label: str, figure: dict[str, Any] | None, colour: str = charts.INK) -> charts.IntervalRow:
    figure = figure or {}
    return charts.IntervalRow(label, figure.get("estimate"), figure.get("low"), figure.get("high"), colour)


def _aspect_charts(report: dict[str, Any], aspect: dict[str, Any]) -> dict[str, Any]:
    """SVG charts for one aspect of a report."""
    colours = {j["id"]: charts.SERIES[k % len(charts.SERIES)] for k, j in enumerate(report["ai_judges"])}
    human = aspect["human"]
    agreement = [
        _figure_row("human – human", human["agreement"]["with_ties"]),
        _figure_row("human – human, no ties", human["agreement"]["without_ties"]),
    ]
    chance = [
        _figure_row("α nominal (humans)", human["alpha_nominal"]),
        _figure_row("α ordinal (humans)", human["alpha_ordinal"]),
    ]
    if human.get("fleiss_kappa"):
        chance.append(_figure_row("Fleiss κ (humans)", human["fleiss_kappa"]))
    for entry in aspect["ai"]:
        name, colour = entry["judge"]["name"], colours[entry["judge"]["id"]]
        agreement += [
            _figure_row(f"{name} – humans", entry["agreement_with_humans"]["with_ties"], colour),
            _figure_row(f"{name} – humans, no ties", entry["agreement_with_humans"]["without_ties"], colour),
            _figure_row(f"{name} – majority", entry["agreement_with_majority"]["with_ties"], colour),
            _figure_row(
                f"{name} – majority, no ties", entry["agreement_with_majority"]["without_ties"], colour
            ),
        ]
        if entry["swap_consistency"]:
            agreement.append(
                _figure_row(f"{name} swap consistency", entry["swap_consistency"]["with_ties"], colour)
            )
        chance += [
            _figure_row(f"{name} κ vs majority", entry["kappa"], colour),
            _figure_row(f"{name} linear κ", entry["kappa_linear"], colour),
        ]
    position = [_figure_row("humans (pooled)", human["position_bias"].get("share_first"))]
    difference = []
    for entry in aspect["ai"]:
        name, colour = entry["judge"]["name"], colours[entry["judge"]["id"]]
        position.append(_figure_row(name, entry["position_bias"].get("share_first"), colour))
        for label, key in (("", "with_ties"), (", no ties", "without_ties")):
            difference.append(_figure_row(f"{name}{label}", entry["verdict"][key].get("difference"), colour))
    names = {g["id"]: g["name"] for g in report["generators"]}
    boards = aspect["leaderboards"]

    def series(board: dict[str, Any], name: str, colour: str) -> charts.BoardSeries:
        return charts.BoardSeries(
            name,
            colour,
            {row["generator_id"]: (row["strength"], row["low"], row["high"]) for row in board["generators"]},
        )

    human_series = series(boards["human"], "humans", charts.HUMAN)
    ai_series = [series(b, b["judge"]["name"], colours[b["judge"]["id"]]) for b in boards["ai"]]
    ordered = [(row["generator_id"], names[row["generator_id"]]) for row in boards["human"]["generators"]]
    seen = {g for g, _ in ordered}
    for board in boards["ai"]:
        for row in board["generators"]:
            if row["generator_id"] not in seen:
                seen.add(row["generator_id"])
                ordered.append((row["generator_id"], names[row["generator_id"]]))
    return {
        "agreement": charts.interval_chart(agreement, title=f"Agreement on {aspect['name']}"),
        "chance": charts.interval_chart(
            chance, title=f"Chance-corrected agreement on {aspect['name']}", domain=(0.0, 1.0)
        ),
        "position": charts.interval_chart(
            position, title=f"Share of choices for the first-shown image on {aspect['name']}", reference=0.5
        ),
        "difference": charts.interval_chart(
            difference,
            title=f"Judge–human minus human–human agreement on {aspect['name']}",
            domain=(-0.2, 0.2),
            reference=-report["thresholds"]["verdict_margin"],  # the "within" boundary
        )
        if difference
        else None,
        "confusion": [
            {
                "judge": entry["judge"],
                "svg": charts.confusion_heatmap(
                    entry["confusion"]["counts"],
                    entry["confusion"]["labels"],
                    title=f"{entry['judge']['name']} vs human majority",
                    colour=colours[entry["judge"]["id"]],
                ),
            }
            for entry in aspect["ai"]
        ],
        "leaderboard": charts.leaderboard_chart(
            ordered, [human_series, *ai_series], title="Generator leaderboard"
        )
        if ordered
        else None,
        "scatter": charts.rank_scatter(
            {g: row[0] for g, row in human_series.rows.items()},
            ai_series,
            names,
            title="Human vs AI strengths",
        )
        if ai_series and human_series.rows
        else None,
    }


def _verdict_summary(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per judge: its verdict (with ties) on each aspect, for the summary above the aspect tabs."""
    rows: dict[int, dict[str, Any]] = {}
    for judge in report["ai_judges"]:
        rows[judge["id"]] = {"judge": judge, "cells": []}
    for aspect in report["aspects"]:
        by_judge = {entry["judge"]["id"]: entry for entry in aspect["ai"]}
        for judge_id, row in rows.items():
            entry = by_judge.get(judge_id)
            row["cells"].append(
                {"aspect": aspect, "verdict": entry["verdict"]["with_ties"] if entry else None}
            )
    return list(rows.values())


@admin_required
@require_GET
def report_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The campaign's cached agreement report for the chosen filters and aspect, with charts."""
    campaign = get_object_or_404(Campaign, slug=slug)
    params = _parameters(request, campaign)
    cached = _cached(campaign, params)
    report = cached.data if cached else None
    aspect = None
    if report and report["aspects"]:
        keys = [a["key"] for a in report["aspects"]]
        chosen = request.GET.get("aspect")
        aspect = report["aspects"][keys.index(chosen) if chosen in keys else 0]
    verdicts = _verdict_summary(report) if report else []
    # Judges of every campaign in the report, so a judge of a pooled campaign can be picked too.
    judges = selectors.ai_judges_of(campaigns=list(Campaign.objects.filter(pk__in=params.campaign_ids)))
    context = {
        "campaign": campaign,
        "params": params,
        "query": _query(params, campaign),
        "report_obj": cached,
        "report": report,
        "aspect": aspect,
        "charts": _aspect_charts(report, aspect) if report and aspect else None,
        "generator_names": {g["id"]: g["name"] for g in report["generators"]} if report else {},
        "ai_names": {j["id"]: j["name"] for j in report["ai_judges"]} if report else {},
        "judges": judges,
        "selected_judges": set(params.ai_judge_ids)
        if params.ai_judge_ids is not None
        else {j.pk for j in judges},
        "other_campaigns": Campaign.objects.exclude(pk=campaign.pk).order_by("name"),
        "majority_rules": MAJORITY_RULE_NAMES,
        "verdicts": verdicts,
        # Mean VP-Score per generator beside the human strengths, for reward models that scored the campaign.
        "vp_columns": leaderboard_columns(campaign, aspect["key"]) if aspect else [],
        "job": report_job_running(campaign=campaign, params=params),
        "stale": selectors.judgments_since(campaign_ids=params.campaign_ids, since=cached.created_at)
        if cached
        else None,
    }
    return render(request, "scoring/report.html", context)


@admin_required
@require_POST
def report_refresh(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Start (or join) the Celery job that recomputes this report; htmx gets the progress partial."""
    campaign = get_object_or_404(Campaign, slug=slug)
    params = _parameters(request, campaign)
    job = report_job_start(campaign=campaign, params=params, user=request.user)
    if request.htmx:
        return render(
            request,
            "scoring/report.html#report-progress",
            {"job": job, "campaign": campaign, "query": _query(params, campaign)},
        )
    return redirect(f"{reverse('scoring:report', args=[campaign.slug])}?{_query(params, campaign)}")


@admin_required
@require_GET
def report_progress(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    """Polled every 2 s while the job runs; reloads the page once the new report is there."""
    campaign = get_object_or_404(Campaign, slug=slug)
    job = get_object_or_404(Job, pk=job_id, kind=REPORT, campaign=campaign)
    response = render(
        request,
        "scoring/report.html#report-progress",
        {"job": job, "campaign": campaign, "query": request.GET.urlencode()},
    )
    if job.status == Job.Status.SUCCEEDED:
        response["HX-Refresh"] = "true"
    return response


def _job_answer(request: HtmxHttpRequest, job: Job) -> JsonResponse:
    return JsonResponse(
        {
            "status": job.status,
            "job_id": job.pk,
            "job_url": request.build_absolute_uri(reverse("core:job-detail", args=[job.pk])),
            "retry_after_s": 2,
        },
        status=202,
    )


@require_http_methods(["GET", "POST"])
def report_json(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The cached report as JSON (schema: docs/report-schema.md); POST starts (or joins) the job computing it.

    GET: 200 with the report; 202 with the job while one computes it; 404 with how to start one. A GET
    never changes anything (`refresh=1` on a GET is refused with 400).
    """
    if not request.user.is_authenticated:
        return JsonResponse({"error": "authentication required"}, status=401)
    if not is_admin(request.user):
        return JsonResponse({"error": "admins only"}, status=403)
    campaign = get_object_or_404(Campaign, slug=slug)
    params = _parameters(request, campaign)
    refresh = {
        "method": "POST",
        "url": request.build_absolute_uri(
            f"{reverse('scoring:report-json', args=[campaign.slug])}?{_query(params, campaign)}"
        ),
    }
    if request.method == "POST":
        return _job_answer(request, report_job_start(campaign=campaign, params=params, user=request.user))
    if request.GET.get("refresh"):
        return JsonResponse(
            {"error": "a GET never starts a report job: POST to refresh.url instead", "refresh": refresh},
            status=400,
        )
    cached = _cached(campaign, params)
    if cached is not None:
        return JsonResponse(cached.data, json_dumps_params={"ensure_ascii": False})
    running = report_job_running(campaign=campaign, params=params)
    if running is not None:
        return _job_answer(request, running)
    return JsonResponse(
        {
            "error": "no report is cached for these parameters; POST to refresh.url to compute one",
            "refresh": refresh,
        },
        status=404,
    )
