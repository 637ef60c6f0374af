"""Pages for everyone: the dashboard and campaign overview."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from annotate.models import Campaign, Generator
from annotate.permissions import admin_required, is_admin
from annotate.selectors import campaign_list_with_counts, campaign_summary


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Admins see every campaign; crowdworkers see the active campaigns they can label."""
    if is_admin(request.user):
        return render(request, "annotate/home_admin.html", {"campaigns": campaign_list_with_counts()})
    campaigns = Campaign.objects.filter(status=Campaign.Status.ACTIVE).order_by("name")
    return render(request, "annotate/home_worker.html", {"campaigns": campaigns})


@admin_required
def campaign_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """One campaign's overview for admins."""
    campaign = get_object_or_404(Campaign, slug=slug)
    context = {
        "campaign": campaign,
        "summary": campaign_summary(campaign=campaign),
        "aspects": campaign.aspects.all(),
        "generators": Generator.objects.filter(images__prompt__campaigns=campaign).distinct(),
        "sample_pairs": campaign.pairs.select_related("image_a", "image_b", "prompt").order_by("pk")[:6],
        "jobs": campaign.jobs.order_by("-created_at")[:10],
    }
    return render(request, "annotate/campaign_detail.html", context)
