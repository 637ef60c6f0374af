"""Crowd platform entry: turning a participant id in the entry link into a worker account.

Accepted ids (anything else is refused with a clear error page, and nothing is created):

- Prolific: `PROLIFIC_PID` (required), `STUDY_ID` and `SESSION_ID` (optional, checked when present) are
  24 hexadecimal characters (Prolific ids are MongoDB object ids); stored lower-case.
- MTurk: `workerId` is an upper-case letter A followed by 11 to 19 upper-case letters or digits (real ids
  are 12 to 14 characters, e.g. A1B2C3D4E5F6G7); `assignmentId` and `hitId` (optional) are 20 to 40
  upper-case letters or digits. The preview value `ASSIGNMENT_ID_NOT_AVAILABLE` means the HIT is not
  accepted yet, and is reported as such.

Ids must match their pattern in full (`fullmatch`): a trailing newline or space would otherwise make a
second account for the same participant and break the distinct-humans overlap.

A participant id is not a secret, so the crowd account has no password and can only label: it is a plain
user in the crowdworkers group, never staff, and sees nothing but its own queue. Because anyone can make
up ids, new participants are rate limited per client address (CROWD_FREE_NEW_WORKERS_PER_ADDRESS, then
one per delay, doubling up to CROWD_NEW_WORKER_BACKOFF_MAX_S); returning participants are not counted.

The completion code is earned with `Campaign.min_labeled_pairs` labeled pairs (default: the worker quota,
or 1 without a quota); skipped pairs never count. A worker with fewer earns it only when the campaign has
no pair left that they could still label (every pair they did not label is full).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from annotate.models import Annotator, Assignment, Campaign, CampaignWorker, Pair
from annotate.services.campaigns import crowdworker_create
from core.ratelimit import Backoff

# Matched with fullmatch(): "$" would also accept a trailing newline.
PROLIFIC_ID = re.compile(r"[0-9a-fA-F]{24}")
MTURK_WORKER_ID = re.compile(r"A[A-Z0-9]{11,19}")
MTURK_TASK_ID = re.compile(r"[A-Z0-9]{20,40}")
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"


class CrowdIdInvalid(Exception):
    """The entry link's ids are missing, malformed or mixed; the message says which."""


class CrowdPreview(Exception):
    """MTurk shows the task before the worker accepts the HIT."""


class CrowdEntryLimited(Exception):
    """Too many new participants from one address lately; `retry_after_s` says when one more may enter."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"Too many new participants from this network; try again in {retry_after_s:.0f} s.")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class CrowdIdentity:
    """A validated participant: platform, worker id and the session ids that came with it."""

    platform: str
    external_id: str
    params: dict[str, str]


def crowd_identity_parse(*, query: Any) -> CrowdIdentity:
    """Validate the entry link's query parameters; raise CrowdIdInvalid or CrowdPreview."""
    prolific = "PROLIFIC_PID" in query
    mturk = "workerId" in query or "assignmentId" in query
    if prolific and mturk:
        raise CrowdIdInvalid("The link mixes Prolific and MTurk parameters.")
    if prolific:
        pid = query.get("PROLIFIC_PID", "")
        if not PROLIFIC_ID.fullmatch(pid):
            raise CrowdIdInvalid("PROLIFIC_PID must be 24 hexadecimal characters.")
        params = {}
        for name in ("STUDY_ID", "SESSION_ID"):
            value = query.get(name)
            if value is not None:
                if not PROLIFIC_ID.fullmatch(value):
                    raise CrowdIdInvalid(f"{name} must be 24 hexadecimal characters.")
                params[name] = value.lower()
        return CrowdIdentity(platform="prolific", external_id=pid.lower(), params=params)
    if mturk:
        if query.get("assignmentId") == MTURK_PREVIEW:
            raise CrowdPreview("Accept the HIT to start labeling.")
        worker_id = query.get("workerId", "")
        if not MTURK_WORKER_ID.fullmatch(worker_id):
            raise CrowdIdInvalid(
                "workerId must be an MTurk worker id: A followed by 11–19 capital letters or digits."
            )
        params = {}
        for name in ("assignmentId", "hitId"):
            value = query.get(name)
            if value is not None:
                if not MTURK_TASK_ID.fullmatch(value):
                    raise CrowdIdInvalid(f"{name} must be 20–40 capital letters or digits.")
                params[name] = value
        return CrowdIdentity(platform="mturk", external_id=worker_id, params=params)
    raise CrowdIdInvalid("The link has no participant id (PROLIFIC_PID or workerId).")


def _new_worker_policy() -> Backoff:
    return Backoff(
        "crowd:new-worker",
        free=settings.CROWD_FREE_NEW_WORKERS_PER_ADDRESS,
        window_s=settings.CROWD_NEW_WORKER_WINDOW_S,
        base_s=settings.CROWD_NEW_WORKER_BACKOFF_BASE_S,
        max_s=settings.CROWD_NEW_WORKER_BACKOFF_MAX_S,
    )


def crowd_worker_enter(
    *, campaign: Campaign, identity: CrowdIdentity, address: str
) -> tuple[Any, CampaignWorker]:
    """Create or resume the worker for a participant id and enrol them; returns (user, link).

    A participant not seen before counts against `address` (the client's address); CrowdEntryLimited when
    that address brought in too many new participants lately. Nothing is created then.
    """
    known = Annotator.objects.filter(platform=identity.platform, external_id=identity.external_id)
    policy = _new_worker_policy()
    counted = False
    if not known.exists():
        wait = policy.take(address)
        if wait:
            raise CrowdEntryLimited(wait)
        counted = True
    with transaction.atomic():
        annotator = known.first()
        if annotator is None:
            user = crowdworker_create(username=f"{identity.platform}-{identity.external_id}")
            Annotator.objects.filter(user=user).update(
                platform=identity.platform, external_id=identity.external_id
            )
            annotator = Annotator.objects.get(user=user)
            if counted:
                policy.hold(address)  # the next new participant from here waits, once the free ones are used
        elif counted:
            policy.release(address)  # created meanwhile by a parallel request: not a new participant
        link, _ = CampaignWorker.objects.get_or_create(campaign=campaign, annotator=annotator)
        if identity.params and link.crowd_params != identity.params:
            link.crowd_params = identity.params
            link.save(update_fields=["crowd_params"])
    return annotator.user, link


@dataclass(frozen=True)
class Completion:
    """Where a worker stands at the end: still labeling, or done (with or without the reward)."""

    link: CampaignWorker
    still_labeling: bool
    earned: bool
    blocked: bool
    quota_reached: bool
    labeled_needed: int


def campaign_labeled_needed(*, campaign: Campaign) -> int:
    """Labeled (not skipped) pairs a worker needs for the completion code."""
    needed = campaign.min_labeled_pairs or campaign.worker_quota or 1
    if campaign.worker_quota:
        needed = min(needed, campaign.worker_quota)  # a minimum above the quota could never be met
    return max(1, needed)


def campaign_pairs_left_for(*, campaign: Campaign, annotator: Annotator) -> bool:
    """Whether a regular pair with a free slot is left that this worker has not labeled (skipped ones count)."""
    labeled = Assignment.objects.filter(
        pair=OuterRef("pk"), annotator=annotator, status=Assignment.Status.SUBMITTED
    )
    overlap = Campaign.objects.filter(pk=campaign.pk).values("humans_per_pair")[:1]
    open_pairs = Pair.objects.filter(
        campaign=campaign, is_gold=False, slots_taken__lt=Subquery(overlap)
    ).filter(~Exists(labeled))
    return open_pairs.exists()


def crowd_worker_complete(*, campaign: Campaign, annotator: Annotator) -> Completion:
    """Decide whether a worker has finished and earned the completion code; the first time, record when."""
    from annotate.services.assignments import campaign_worker_get

    link = campaign_worker_get(campaign=campaign, annotator=annotator)
    blocked = annotator.status == Annotator.Status.BLOCKED
    live = Assignment.objects.filter(
        annotator=annotator, campaign=campaign, status=Assignment.Status.RESERVED
    )
    still_labeling = not blocked and campaign.status == Campaign.Status.ACTIVE and live.exists()
    needed = campaign_labeled_needed(campaign=campaign)
    earned = (
        not still_labeling
        and not blocked
        and link.submitted > 0
        # Skips never count: fewer labels than needed earn the code only when nothing is left to label.
        and (link.submitted >= needed or not campaign_pairs_left_for(campaign=campaign, annotator=annotator))
    )
    if earned and link.completed_at is None:
        # Conditional: a reload records the first completion time, not the latest.
        CampaignWorker.objects.filter(pk=link.pk, completed_at__isnull=True).update(
            completed_at=timezone.now()
        )
    return Completion(
        link=link,
        still_labeling=still_labeling,
        earned=earned,
        blocked=blocked,
        quota_reached=campaign.worker_quota is not None and link.submitted >= campaign.worker_quota,
        labeled_needed=needed,
    )
