"""Storing a worker's judgments for a reserved pair, with quality control.

A submission is accepted only for a pair reserved to that worker, or one whose reservation expired but
was not handed to anyone else meanwhile. The assignment row is locked first, so a double click or network
retry finds it already submitted and stores nothing more (the Judgment unique constraint is the backstop).
Choices arrive as the worker saw them (left / tie / right) and are stored in canonical terms (A / B / tie)
with the order they were presented in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotate.models import Annotator, Aspect, Assignment, Campaign, CampaignWorker, Judgment, Pair
from annotate.services.assignments import AssignmentError, pair_slot_take

SIDES = ("left", "tie", "right")
SPEED_FLAG_MIN_SUBMISSIONS = 10  # the too-fast share means little before this many submissions
RATIONALE_MAX_CHARS = 2000


class JudgmentInvalid(AssignmentError):
    """The form is incomplete or breaks the campaign's rules; `errors` maps aspect key to message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("Please complete the form.", status=422)
        self.errors = errors


@dataclass
class SubmitResult:
    """What happened: `duplicate` is True when this assignment had already been submitted."""

    assignment: Assignment
    duplicate: bool = False
    judgments: list[Judgment] = field(default_factory=list)


def canonical_choice(*, side: str, swapped: bool) -> str:
    """Map what the worker clicked (left/tie/right) to canonical A/B/tie, given which image was on the left."""
    if side == "tie":
        return Judgment.Choice.TIE
    left, right = ("B", "A") if swapped else ("A", "B")
    return left if side == "left" else right


def judgment_form_validate(
    *, campaign: Campaign, aspects: list[Aspect], choices: dict[str, str], rationales: dict[str, str]
) -> None:
    """Raise JudgmentInvalid unless every aspect has an allowed choice and a rationale where required."""
    errors: dict[str, str] = {}
    for aspect in aspects:
        side = choices.get(aspect.key, "")
        rationale = rationales.get(aspect.key, "").strip()
        if side not in SIDES:
            errors[aspect.key] = (
                "Choose left, tie or right." if campaign.allow_tie else "Choose left or right."
            )
        elif side == "tie" and not campaign.allow_tie:
            errors[aspect.key] = "This campaign does not allow ties: choose left or right."
        elif campaign.rationale_required and not rationale:
            errors[aspect.key] = "Please give a short reason."
        elif len(rationale) > RATIONALE_MAX_CHARS:
            errors[aspect.key] = f"Please keep the reason under {RATIONALE_MAX_CHARS} characters."
    if errors:
        raise JudgmentInvalid(errors)


def judgment_submit(
    *,
    campaign: Campaign,
    aspects: list[Aspect],
    assignment_id: int,
    annotator: Annotator,
    choices: dict[str, str],
    rationales: dict[str, str],
    now: datetime | None = None,
) -> SubmitResult:
    """Store one judgment per aspect for a pair reserved to this worker; refuse anything else with a 4xx."""
    now = now or timezone.now()
    judgment_form_validate(campaign=campaign, aspects=aspects, choices=choices, rationales=rationales)
    if annotator.status == Annotator.Status.BLOCKED:
        raise AssignmentError("Your account cannot submit labels.", status=403)
    if campaign.status != Campaign.Status.ACTIVE:
        raise AssignmentError("This campaign is not open for labeling right now.", status=409)
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("pair")
            .filter(pk=assignment_id, annotator=annotator, campaign=campaign)
            .first()
        )
        if assignment is None:
            raise AssignmentError("This pair is not reserved to you.", status=404)
        if assignment.status == Assignment.Status.SUBMITTED:
            return SubmitResult(assignment=assignment, duplicate=True)
        if assignment.status == Assignment.Status.SKIPPED:
            raise AssignmentError("You skipped this pair.", status=409)
        pair = assignment.pair
        # Late but not too late: an expired reservation is accepted while the slot it held is still free.
        if assignment.status == Assignment.Status.EXPIRED and not pair_slot_take(
            pair_id=pair.pk, campaign_id=None if pair.is_gold else campaign.pk
        ):
            raise AssignmentError("Your reservation expired and the pair went to someone else.", status=409)
        # Measured on the server from when the pair was first shown, so a client cannot fake its speed.
        started = assignment.shown_at or assignment.created_at
        assignment.seconds_spent = max(0.0, (now - started).total_seconds())
        judgments = _judgments_build(
            assignment=assignment, pair=pair, aspects=aspects, choices=choices, rationales=rationales
        )
        Judgment.objects.bulk_create(judgments)
        assignment.too_fast = assignment.seconds_spent < campaign.min_seconds_per_pair
        assignment.status = Assignment.Status.SUBMITTED
        assignment.submitted_at = now
        if pair.is_gold:
            graded = [j for j in judgments if pair.gold_answers.get(j.aspect.key)]
            assignment.gold_total = len(graded)
            assignment.gold_correct = sum(j.choice == pair.gold_answers[j.aspect.key] for j in graded)
        assignment.save(
            update_fields=[
                "status",
                "submitted_at",
                "seconds_spent",
                "too_fast",
                "gold_total",
                "gold_correct",
            ]
        )
        Pair.objects.filter(pk=pair.pk).update(slots_submitted=F("slots_submitted") + 1)
        _campaign_worker_count(campaign=campaign, assignment=assignment, annotator=annotator, now=now)
        if assignment.too_fast or assignment.gold_total:
            link = CampaignWorker.objects.get(campaign=campaign, annotator=annotator)
            annotator_status_refresh(annotator=annotator, campaign=campaign, link=link)
    return SubmitResult(assignment=assignment, judgments=judgments)


def _judgments_build(
    *,
    assignment: Assignment,
    pair: Pair,
    aspects: list[Aspect],
    choices: dict[str, str],
    rationales: dict[str, str],
) -> list[Judgment]:
    order = "BA" if assignment.swapped else "AB"
    return [
        Judgment(
            pair=pair,
            annotator_id=assignment.annotator_id,
            aspect=aspect,
            choice=canonical_choice(side=choices[aspect.key], swapped=assignment.swapped),
            presented_order=order,
            rationale=rationales.get(aspect.key, "").strip(),
            duration_s=assignment.seconds_spent,
            assignment=assignment,
        )
        for aspect in aspects
    ]


def _campaign_worker_count(
    *, campaign: Campaign, assignment: Assignment, annotator: Annotator, now: datetime
) -> None:
    counters = {
        "submitted": F("submitted") + 1,
        "too_fast": F("too_fast") + int(assignment.too_fast),
        "seconds_total": F("seconds_total") + (assignment.seconds_spent or 0.0),
        "gold_pairs": F("gold_pairs") + int(assignment.pair.is_gold),
        "gold_answers": F("gold_answers") + assignment.gold_total,
        "gold_correct": F("gold_correct") + assignment.gold_correct,
        "last_active_at": now,
    }
    rows = CampaignWorker.objects.filter(campaign=campaign, annotator=annotator)
    if not rows.update(**counters):
        CampaignWorker.objects.get_or_create(campaign=campaign, annotator=annotator)
        rows.update(**counters)


def annotator_status_refresh(*, annotator: Annotator, campaign: Campaign, link: CampaignWorker) -> str:
    """Set the worker's status from the campaign's thresholds; a status an admin set by hand is kept."""
    if annotator.status_set_by_admin or annotator.status == Annotator.Status.BLOCKED:
        return annotator.status  # blocking is never lifted automatically
    status, reason = Annotator.Status.ACTIVE, ""
    accuracy = link.gold_accuracy
    if link.gold_pairs >= campaign.min_gold_for_status and accuracy is not None:
        if accuracy < campaign.block_gold_accuracy_below:
            status = Annotator.Status.BLOCKED
            reason = f"Gold accuracy {accuracy:.0%} below {campaign.block_gold_accuracy_below:.0%} in {campaign.name}"
        elif accuracy < campaign.flag_gold_accuracy_below:
            status = Annotator.Status.FLAGGED
            reason = f"Gold accuracy {accuracy:.0%} below {campaign.flag_gold_accuracy_below:.0%} in {campaign.name}"
    share = link.too_fast_share
    if (
        status == Annotator.Status.ACTIVE
        and link.submitted >= SPEED_FLAG_MIN_SUBMISSIONS
        and share is not None
        and share > campaign.flag_too_fast_share
    ):
        status = Annotator.Status.FLAGGED
        reason = (
            f"{share:.0%} of submissions faster than {campaign.min_seconds_per_pair:g} s in {campaign.name}"
        )
    if status != annotator.status or reason != annotator.status_reason:
        Annotator.objects.filter(pk=annotator.pk).update(status=status, status_reason=reason)
        annotator.status, annotator.status_reason = status, reason
    return status


def annotator_status_set(*, annotator: Annotator, status: str, reason: str = "") -> Annotator:
    """An admin sets a worker's status by hand; "auto" hands it back to the campaign thresholds."""
    if status == "auto":
        Annotator.objects.filter(pk=annotator.pk).update(status_set_by_admin=False)
        annotator.status_set_by_admin = False
        return annotator
    if status not in Annotator.Status.values:
        raise ValueError(f"Unknown status {status!r}.")
    annotator.status = status
    annotator.status_reason = reason or "Set by an admin"
    annotator.status_set_by_admin = True
    annotator.save(update_fields=["status", "status_reason", "status_set_by_admin"])
    return annotator
