"""Admin page of a campaign's members (invite-only campaigns), and the page where an invited person sets a password."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.tokens import default_token_generator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.http import require_POST

from annotate.forms import BulkAccountsForm, InviteForm
from annotate.models import Annotator, Campaign, CampaignWorker
from annotate.services.members import (
    campaign_accounts_bulk_create,
    campaign_member_remove,
    campaign_members_invite,
    invitation_email_send,
)
from core.http import HtmxHttpRequest
from core.permissions import admin_required

logger = logging.getLogger(__name__)


def _members_page(
    request: HtmxHttpRequest,
    campaign: Campaign,
    *,
    invite_form: InviteForm | None = None,
    bulk_form: BulkAccountsForm | None = None,
    status: int = 200,
    **extra: object,
) -> HttpResponse:
    members = (
        CampaignWorker.objects.filter(campaign=campaign, invited_at__isnull=False)
        .select_related("annotator__user")
        .order_by("annotator__name")
    )
    context = {
        "campaign": campaign,
        "members": members,
        "invite_form": invite_form or InviteForm(),
        "bulk_form": bulk_form or BulkAccountsForm(),
        **extra,
    }
    return render(request, "annotate/members.html", context, status=status)


@admin_required
def member_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Who may label an invite-only campaign, with forms to invite by email and to create accounts in bulk."""
    return _members_page(request, get_object_or_404(Campaign, slug=slug))


@admin_required
@require_POST
def member_invite(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Invite addresses: accounts and membership now, then an email each; every link is shown to copy too."""
    campaign = get_object_or_404(Campaign, slug=slug)
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _members_page(request, campaign, invite_form=form, status=422)
    invitations = campaign_members_invite(campaign=campaign, emails=form.cleaned_data["emails"])
    sent = []
    for invitation in invitations:
        if invitation.needs_password:
            path = reverse("annotate:invite-accept", args=[invitation.uidb64, invitation.token])
        else:
            path = reverse("annotate:login")
        link = request.build_absolute_uri(path)
        try:
            invitation_email_send(invitation=invitation, campaign=campaign, link=link)
            emailed = True
        except Exception as exc:  # noqa: BLE001 - no mail server is a normal state; the page shows the link
            logger.warning("invitation email to %s not sent: %s", invitation.email, exc)
            emailed = False
        sent.append({"invitation": invitation, "link": link, "emailed": emailed})
    return _members_page(request, campaign, invited=sent)


@admin_required
@require_POST
def member_bulk(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Create accounts in bulk; their passwords are shown on this response only."""
    campaign = get_object_or_404(Campaign, slug=slug)
    form = BulkAccountsForm(request.POST)
    if not form.is_valid():
        return _members_page(request, campaign, bulk_form=form, status=422)
    try:
        accounts = campaign_accounts_bulk_create(campaign=campaign, usernames=form.cleaned_data["names"])
    except ValueError as exc:
        form.add_error(None, str(exc))
        return _members_page(request, campaign, bulk_form=form, status=422)
    login_url = request.build_absolute_uri(reverse("annotate:login"))
    return _members_page(request, campaign, accounts=accounts, login_url=login_url)


@admin_required
@require_POST
def member_remove(request: HtmxHttpRequest, slug: str, annotator_id: int) -> HttpResponse:
    """End one membership; the worker's labels stay, their reserved pairs go back to the pool."""
    campaign = get_object_or_404(Campaign, slug=slug)
    annotator = get_object_or_404(Annotator, pk=annotator_id)
    freed = campaign_member_remove(campaign=campaign, annotator=annotator)
    note = f" and {freed} reserved pair{'s' * (freed != 1)} went back to the pool" if freed else ""
    messages.success(request, f"{annotator.name} is no longer a member{note}.")
    return redirect("annotate:campaign-members", slug=campaign.slug)


def invite_accept(request: HtmxHttpRequest, uidb64: str, token: str) -> HttpResponse:
    """An invited person sets their password (the link works once), is signed in and sees their campaigns."""
    user = None
    try:
        user = get_user_model().objects.filter(pk=int(force_str(urlsafe_base64_decode(uidb64)))).first()
    except (TypeError, ValueError, OverflowError):
        user = None
    if user is None or not default_token_generator.check_token(user, token):
        context = {
            "title": "This invitation link does not work",
            "message": "It was used already or it is incomplete. Sign in if you have set your password, or ask "
            "the researchers for a new invitation.",
            "error": True,
        }
        return render(request, "annotate/crowd_message.html", context, status=404)
    form = SetPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        login(request, user, backend="annotate.auth_backends.UserAnnotatorBackend")
        messages.success(request, "Your password is set. These are the campaigns you can label.")
        return redirect("annotate:home")
    return render(request, "annotate/invite_accept.html", {"form": form, "invitee": user})
