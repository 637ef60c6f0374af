"""Exports from the campaign page: the judgments JSONL (docs/judgments-jsonl.md), streamed from the app, or
stored (in the object store in production) and downloaded from there through a short-lived signed link."""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from annotate.models import Campaign
from core.http import HtmxHttpRequest
from core.permissions import admin_required
from core.storage_io import signed_url
from scoring.services.judgments_io import judgments_export_lines, judgments_export_store


@admin_required
@require_GET
def export_judgments(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Download a campaign's judgments as JSONL; rejected ones only when asked, crowd ids pseudonymised on request."""
    campaign = get_object_or_404(Campaign, slug=slug)
    pseudonymise = request.GET.get("pseudonymise") == "1"
    include_rejected = request.GET.get("include_rejected") == "1"
    lines = judgments_export_lines(
        campaign_slugs=[campaign.slug], include_rejected=include_rejected, pseudonymise=pseudonymise
    )
    response = StreamingHttpResponse((line.encode() for line in lines), content_type="application/x-ndjson")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    suffix = "-pseudonymised" if pseudonymise else ""
    response["Content-Disposition"] = (
        f'attachment; filename="{campaign.slug}-judgments-{stamp}{suffix}.jsonl"'
    )
    return response  # type: ignore[return-value]  # streamed: admin_required's type names HttpResponse only


@admin_required
@require_POST
def export_judgments_stored(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Store the JSONL export, then send the browser to its signed download link (same options as above)."""
    campaign = get_object_or_404(Campaign, slug=slug)
    pseudonymise = request.POST.get("pseudonymise") == "1"
    name, _count = judgments_export_store(
        campaign=campaign,
        include_rejected=request.POST.get("include_rejected") == "1",
        pseudonymise=pseudonymise,
    )
    return HttpResponseRedirect(signed_url(name, download_as=name.rsplit("/", 1)[-1]))
