"""Pages for everyone: the dashboard and campaign overview."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotate.models import Annotator, Campaign, CampaignWorker, Generator
from annotate.selectors import (
    campaign_list_with_counts,
    campaign_progress,
    campaign_summary,
    campaign_warnings,
    campaign_worker_table,
    campaigns_for_worker,
)
from annotate.services.judgments import annotator_status_set
from core.http import HtmxHttpRequest
from core.permissions import admin_required, is_admin


@login_required
def home(request: HtmxHttpRequest) -> HttpResponse:
    """Admins see every campaign; workers see the active campaigns they may label (open, or invited to)."""
    if is_admin(request.user):
        return render(request, "annotate/home_admin.html", {"campaigns": campaign_list_with_counts()})
    campaigns = campaigns_for_worker(user=request.user)
    return render(request, "annotate/home_worker.html", {"campaigns": campaigns})


@admin_required
def campaign_detail(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """One campaign's overview for admins; htmx polls get only the live progress and worker table."""
    campaign = get_object_or_404(Campaign, slug=slug)
    live = {
        "campaign": campaign,
        "progress": campaign_progress(campaign=campaign),
        "workers": campaign_worker_table(campaign=campaign),
        "statuses": Annotator.Status.choices,
    }
    if request.htmx:
        return render(request, "annotate/campaign_detail.html#live", live)
    context = {
        **live,
        "entry_url": request.build_absolute_uri(f"/c/{campaign.slug}/start"),
        "campaign": campaign,
        "summary": campaign_summary(campaign=campaign),
        "aspects": campaign.aspects.all(),
        "generators": Generator.objects.filter(images__prompt__campaigns=campaign).distinct(),
        "sample_pairs": campaign.pairs.select_related("image_a", "image_b", "prompt").order_by("pk")[:6],
        "jobs": campaign.jobs.order_by("-created_at")[:10],
        "warnings": campaign_warnings(campaign=campaign),
        "members": campaign.workers.filter(invited_at__isnull=False).count()
        if campaign.access == Campaign.Access.INVITE
        else None,
    }
    return render(request, "annotate/campaign_detail.html", context)


@admin_required
@require_POST
def worker_status(request: HtmxHttpRequest, slug: str, annotator_id: int) -> HttpResponse:
    """An admin sets a worker's status by hand (or hands it back to the automatic thresholds)."""
    campaign = get_object_or_404(Campaign, slug=slug)
    link = get_object_or_404(
        CampaignWorker.objects.select_related("annotator"), campaign=campaign, annotator_id=annotator_id
    )
    status = request.POST.get("status", "")
    try:
        annotator_status_set(annotator=link.annotator, status=status)
    except ValueError:
        return HttpResponse("Unknown status.", status=400)
    if not request.htmx:
        return redirect("annotate:campaign-detail", slug=campaign.slug)
    rows = [row for row in campaign_worker_table(campaign=campaign) if row.pk == link.pk] or [link]
    context = {"campaign": campaign, "w": rows[0], "statuses": Annotator.Status.choices}
    return render(request, "annotate/campaign_detail.html#worker-row", context)
