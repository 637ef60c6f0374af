"""Who may label an invite-only campaign: members, invitations by email, accounts made in bulk.

Membership is the worker's enrolment row (CampaignWorker) with `invited_at` set. The labeling screen reads
that row on every request anyway, so an invite-only campaign costs no extra query per request. Removing a
member clears `invited_at` (their counters and labels stay) and hands back their reservations.

An invitation makes an account without a usable password for a new address; the person sets one through
a link built from Django's password-reset tokens, which stop working once the password is set.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from annotate.models import Annotator, Assignment, Campaign, CampaignWorker, Pair
from annotate.services.assignments import AssignmentError, campaign_worker_get
from annotate.services.campaigns import crowdworker_create, human_annotator_for


class NotAMember(AssignmentError):
    """The campaign is invite-only and this worker is not (or no longer) a member."""

    def __init__(self) -> None:
        super().__init__(
            "This campaign is for invited members only. If you were invited, sign in with that account.",
            status=403,
        )


def campaign_worker_for_labeling(
    *, campaign: Campaign, annotator: Annotator, staff: bool = False
) -> CampaignWorker:
    """The worker's enrolment row for the labeling screen; NotAMember for outsiders of invite-only campaigns.

    One query either way: the open campaign's get_or_create, or the invite-only campaign's lookup.
    """
    if campaign.access != Campaign.Access.INVITE or staff:
        return campaign_worker_get(campaign=campaign, annotator=annotator)
    link = CampaignWorker.objects.filter(campaign=campaign, annotator=annotator).first()
    if link is None or link.invited_at is None:
        raise NotAMember()
    return link


def campaign_member_add(*, campaign: Campaign, user: Any) -> CampaignWorker:
    """Make a user a member of the campaign (idempotent: an existing member keeps their first date)."""
    annotator = human_annotator_for(user=user)
    link, _ = CampaignWorker.objects.get_or_create(campaign=campaign, annotator=annotator)
    if link.invited_at is None:
        link.invited_at = timezone.now()
        link.save(update_fields=["invited_at"])
    return link


def campaign_member_remove(*, campaign: Campaign, annotator: Annotator) -> int:
    """End a membership; their pairs on hold go back to the pool. Returns how many reservations were freed."""
    with transaction.atomic():
        CampaignWorker.objects.filter(campaign=campaign, annotator=annotator).update(invited_at=None)
        held = list(
            Assignment.objects.select_for_update()
            .filter(campaign=campaign, annotator=annotator, status=Assignment.Status.RESERVED)
            .values_list("pk", "pair_id")
        )
        Assignment.objects.filter(pk__in=[pk for pk, _ in held]).update(status=Assignment.Status.EXPIRED)
        for _pk, pair_id in sorted(held, key=lambda row: row[1]):
            Pair.objects.filter(pk=pair_id).update(slots_taken=F("slots_taken") - 1)
    return len(held)


@dataclass(frozen=True)
class Invitation:
    """One invited address: its account, whether the account is new, and the set-password token if needed."""

    email: str
    user: Any
    created: bool
    uidb64: str
    token: str  # empty for an account that has a password already

    @property
    def needs_password(self) -> bool:
        return bool(self.token)


def campaign_members_invite(*, campaign: Campaign, emails: list[str]) -> list[Invitation]:
    """Give each address an account (new ones without a password) and membership of the campaign."""
    user_model = get_user_model()
    invitations = []
    with transaction.atomic():
        for email in emails:
            user = user_model.objects.filter(email__iexact=email).order_by("pk").first()
            created = user is None
            if user is None:
                user = crowdworker_create(username=_free_username(email))
                user.email = email
                user.save(update_fields=["email"])
            campaign_member_add(campaign=campaign, user=user)
            token = "" if user.has_usable_password() else default_token_generator.make_token(user)
            invitations.append(
                Invitation(
                    email=email,
                    user=user,
                    created=created,
                    uidb64=urlsafe_base64_encode(force_bytes(user.pk)),
                    token=token,
                )
            )
    return invitations


def _free_username(email: str) -> str:
    user_model = get_user_model()
    base = email[:150]
    name, n = base, 2
    while user_model.objects.filter(username=name).exists():
        suffix = f"-{n}"
        name, n = base[: 150 - len(suffix)] + suffix, n + 1
    return name


def invitation_email_send(*, invitation: Invitation, campaign: Campaign, link: str) -> None:
    """Email one invitation (the caller reports failures: the page shows every link to copy instead)."""
    from django.core.mail import send_mail

    action = "Set your password here" if invitation.needs_password else "Sign in here"
    send_mail(
        subject=f"You are invited to label: {campaign.name}",
        message=(
            f"You have been invited to label images for the campaign {campaign.name}.\n\n"
            f"{action}: {link}\n\nYour username is {invitation.user.get_username()}.\n"
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


@dataclass(frozen=True)
class NewAccount:
    """An account made in bulk: its password is shown once (None: the account existed and keeps its own)."""

    username: str
    password: str | None


def campaign_accounts_bulk_create(*, campaign: Campaign, usernames: list[str]) -> list[NewAccount]:
    """Create worker accounts with random passwords (existing ones keep theirs) and make them members."""
    user_model = get_user_model()
    accounts = []
    with transaction.atomic():
        for username in usernames:
            existing = user_model.objects.filter(username=username).first()
            if existing is not None and existing.is_staff:
                raise ValueError(f"{username} is an admin account; admins need no membership.")
            password = None if existing is not None else secrets.token_urlsafe(9)
            user = existing or crowdworker_create(username=username, password=password)
            campaign_member_add(campaign=campaign, user=user)
            accounts.append(NewAccount(username=username, password=password))
    return accounts
