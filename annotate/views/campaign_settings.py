"""Admin pages to create and edit a campaign's settings, with warnings for settings that cannot work."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotate.forms import CampaignForm
from annotate.models import Campaign, Judgment
from annotate.selectors import campaign_warnings
from annotate.services.campaigns import aspect_custom_create, campaign_save
from core.http import HtmxHttpRequest
from core.permissions import admin_required


def _save(request: HtmxHttpRequest, form: CampaignForm) -> Campaign:
    data = form.cleaned_data
    with transaction.atomic():
        aspects = list(data["aspects"])
        if data.get("new_aspect_name"):
            aspects.append(
                aspect_custom_create(
                    name=data["new_aspect_name"],
                    question=data["new_aspect_question"],
                    rubric=data.get("new_aspect_rubric", ""),
                )
            )
        return campaign_save(campaign=form.instance, aspects=aspects, created_by=request.user)


def _aspect_warnings(form: CampaignForm, campaign: Campaign | None) -> list[str]:
    """Aspects the form drops that already have judgments in this campaign (kept, but out of reports)."""
    if campaign is None:
        return []
    kept = {aspect.pk for aspect in form.cleaned_data.get("aspects", [])}
    dropped = campaign.aspects.exclude(pk__in=kept)
    found = []
    for aspect in dropped:
        n = Judgment.objects.filter(pair__campaign=campaign, aspect=aspect).count()
        if n:
            found.append(
                f"Dropping {aspect.name} hides its {n} judgment{'s' * (n != 1)} in this campaign from reports "
                "and the labeling screen (they are kept; tick it again to bring them back)."
            )
    return found


def _form_page(request: HtmxHttpRequest, form: CampaignForm, campaign: Campaign | None) -> HttpResponse:
    warnings = campaign_warnings(campaign=form.instance) if not form.errors else []
    context = {"form": form, "campaign": campaign, "warnings": warnings}
    return render(request, "annotate/campaign_form.html", context, status=422 if form.errors else 200)


def _submit(request: HtmxHttpRequest, campaign: Campaign | None) -> HttpResponse:
    form = CampaignForm(request.POST or None, instance=campaign or Campaign())
    if request.method != "POST" or not form.is_valid():
        return _form_page(request, form, campaign)
    # A setting that cannot work is saved only once the admin has seen the warning and confirmed.
    warnings = campaign_warnings(campaign=form.instance) + _aspect_warnings(form, campaign)
    if warnings and request.POST.get("confirm") != "1":
        return render(
            request,
            "annotate/campaign_form.html",
            {"form": form, "campaign": campaign, "warnings": warnings, "confirm": True},
        )
    try:
        saved = _save(request, form)
    except ValueError as exc:
        form.add_error(None, str(exc))
        return _form_page(request, form, campaign)
    verb = "Created" if campaign is None else "Saved"
    messages.success(request, f"{verb} campaign {saved.name}.")
    return redirect("annotate:campaign-detail", slug=saved.slug)


@admin_required
def campaign_create(request: HtmxHttpRequest) -> HttpResponse:
    """A new campaign: every setting, with the four default aspects ticked."""
    return _submit(request, None)


@admin_required
def campaign_edit(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """A campaign's settings page ("Edit settings")."""
    return _submit(request, get_object_or_404(Campaign, slug=slug))


@admin_required
@require_POST
def campaign_check(request: HtmxHttpRequest) -> HttpResponse:
    """The warnings partial for the form's current values (htmx, on every change); saves nothing."""
    campaign = None
    if request.POST.get("campaign_id", "").isdigit():
        campaign = Campaign.objects.filter(pk=int(request.POST["campaign_id"])).first()
    form = CampaignForm(request.POST, instance=campaign or Campaign())
    valid = form.is_valid()
    warnings = campaign_warnings(campaign=form.instance) + _aspect_warnings(form, campaign) if valid else []
    context = {"form": form, "warnings": warnings, "checked": True}
    return render(request, "annotate/campaign_form.html#warnings", context)
