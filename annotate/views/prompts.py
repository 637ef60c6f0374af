"""Admin page of a campaign's prompts: search, source, polished-from links, remove and move."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotate.models import Campaign
from annotate.services.prompts import campaign_prompts_move, campaign_prompts_remove
from core.http import HtmxHttpRequest
from core.permissions import admin_required

PROMPTS_PAGE_SIZE = 50


@admin_required
def prompt_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The campaign's prompts, searchable by text and filterable by source, with their pairs and images."""
    campaign = get_object_or_404(Campaign, slug=slug)
    query = request.GET.get("q", "").strip()
    source = request.GET.get("source", "")
    prompts = campaign.prompts.select_related("polished_from")
    if query:
        prompts = prompts.filter(Q(text__icontains=query) | Q(source_id__icontains=query))
    if source:
        prompts = prompts.filter(source=source)
    prompts = prompts.annotate(
        n_pairs=Count("pairs", filter=Q(pairs__campaign=campaign), distinct=True),
        n_images=Count("images", distinct=True),
        n_polished=Count("polished_versions", distinct=True),
    ).order_by("id")
    page = Paginator(prompts, PROMPTS_PAGE_SIZE).get_page(request.GET.get("page"))
    in_campaign = set(
        campaign.prompts.filter(pk__in=[p.polished_from_id for p in page if p.polished_from_id]).values_list(
            "pk", flat=True
        )
    )
    context = {
        "campaign": campaign,
        "page": page,
        "query": query,
        "source": source,
        "sources": campaign.prompts.order_by("source").values_list("source", flat=True).distinct(),
        "total": campaign.prompts.count(),
        "raw_in_campaign": in_campaign,
        "other_campaigns": Campaign.objects.exclude(pk=campaign.pk).order_by("name"),
        "pager_query": urlencode({k: v for k, v in (("q", query), ("source", source)) if v}),
    }
    return render(request, "annotate/prompt_list.html", context)


@admin_required
@require_POST
def prompt_action(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Remove the ticked prompts from the campaign, or move them to another one."""
    campaign = get_object_or_404(Campaign, slug=slug)
    ids = [int(v) for v in request.POST.getlist("prompt") if v.isdigit()]
    back = reverse("annotate:campaign-prompts", args=[campaign.slug])
    if request.POST.get("back", "").startswith(back):
        back = request.POST["back"]
    if not ids:
        messages.error(request, "Tick the prompts first.")
        return redirect(back)
    action = request.POST.get("action")
    if action == "move":
        target = Campaign.objects.filter(slug=request.POST.get("target", "")).first()
        if target is None:
            messages.error(request, "Choose the campaign to move the prompts to.")
            return redirect(back)
        try:
            result = campaign_prompts_move(source=campaign, target=target, prompt_ids=ids)
        except ValueError as exc:
            messages.error(request, str(exc))
            return redirect(back)
        done = f"Moved {len(result.removed)} prompt{'s' * (len(result.removed) != 1)} to {target.name}"
        if result.removed:
            done += " (run Generate images there to pair their images)"
    elif action == "remove":
        result = campaign_prompts_remove(campaign=campaign, prompt_ids=ids)
        done = f"Removed {len(result.removed)} prompt{'s' * (len(result.removed) != 1)}"
    else:
        return HttpResponse("Unknown action.", status=400)
    if result.pairs_deleted:
        done += f"; {result.pairs_deleted} unlabelled pair{'s' * (result.pairs_deleted != 1)} deleted"
    messages.success(request, done + ".")
    if result.kept_labelled:
        messages.warning(
            request,
            f"{len(result.kept_labelled)} prompt{'s' * (len(result.kept_labelled) != 1)} stayed: their pairs "
            "here already have labels, which are never deleted.",
        )
    return redirect(back)
