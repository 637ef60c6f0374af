"""Storing a worker's judgments for a reserved pair, with quality control.

A submission is accepted only for a pair reserved to that worker, or one whose reservation expired but
was not handed to anyone else meanwhile. The assignment row is locked first, so a double click or network
retry finds it already submitted and stores nothing more (the Judgment unique constraint is the backstop).
Choices arrive as the worker saw them (left / tie / right) and are stored in canonical terms (A / B / tie)
with the order they were presented in.

On PostgreSQL the common case, a pair still reserved to the worker, is one statement: mark the assignment
submitted (which locks it and re-checks its status, so of two concurrent submits only one gets a row),
insert the judgments, count the pair and the worker's counters. Anything else (a double submit, an expired
or skipped reservation, someone else's assignment) finds no row there and takes the general path below,
which locks, checks and answers with the right refusal.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from annotate.models import Annotator, Aspect, Assignment, Campaign, CampaignWorker, Judgment, Pair
from annotate.services.assignments import AssignmentError, pair_slot_take

SIDES = ("left", "tie", "right")
RATIONALE_MAX_CHARS = 2000

#: Per-image scores as the form sends them: aspect key -> (left image's score, right image's score).
Scores = dict[str, tuple[str, str]]


class JudgmentInvalid(AssignmentError):
    """The form is incomplete or breaks the campaign's rules; `errors` maps aspect key to message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("Please complete the form.", status=422)
        self.errors = errors


@dataclass
class SubmitResult:
    """What happened: `duplicate` is True when this assignment had already been submitted.

    `link` is the worker's campaign row with its counters after this submission, where the submission
    read it anyway (None otherwise).
    """

    assignment: Assignment
    duplicate: bool = False
    link: CampaignWorker | None = None
    pair_complete: bool = True  # the pair has all its human judgment sets now (undo is no longer offered)


def canonical_choice(*, side: str, swapped: bool) -> str:
    """Map what the worker clicked (left/tie/right) to canonical A/B/tie, given which image was on the left."""
    if side == "tie":
        return Judgment.Choice.TIE
    left, right = ("B", "A") if swapped else ("A", "B")
    return left if side == "left" else right


def scores_parse(*, campaign: Campaign, aspects: list[Aspect], scores: Scores) -> dict[str, tuple[int, int]]:
    """The per-image scores as integers on the campaign's scale (left, right); JudgmentInvalid names each problem."""
    if not campaign.human_scores:
        return {}
    parsed: dict[str, tuple[int, int]] = {}
    errors: dict[str, str] = {}
    low, high = campaign.score_min, campaign.score_max
    for aspect in aspects:
        raw = scores.get(aspect.key, ("", ""))
        values = []
        for text in raw:
            text = (text or "").strip()
            if not text.lstrip("-").isdigit() or not low <= int(text) <= high:
                errors[aspect.key] = f"Score both images from {low} to {high}."
                break
            values.append(int(text))
        if aspect.key not in errors:
            parsed[aspect.key] = (values[0], values[1])
    if errors:
        raise JudgmentInvalid(errors)
    return parsed


def judgment_form_validate(
    *,
    campaign: Campaign,
    aspects: list[Aspect],
    choices: dict[str, str],
    rationales: dict[str, str],
    scores: Scores | None = None,
) -> dict[str, tuple[int, int]]:
    """Raise JudgmentInvalid unless every aspect has an allowed choice, a rationale and scores where required.

    Returns the per-image scores as integers (empty when the campaign asks for none).
    """
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
    try:
        parsed = scores_parse(campaign=campaign, aspects=aspects, scores=scores or {})
    except JudgmentInvalid as invalid:
        errors = {**invalid.errors, **errors}
        parsed = {}
    if errors:
        raise JudgmentInvalid(errors)
    return parsed


def judgment_submit(
    *,
    campaign: Campaign,
    aspects: list[Aspect],
    assignment_id: int,
    annotator: Annotator,
    choices: dict[str, str],
    rationales: dict[str, str],
    scores: Scores | None = None,
    now: datetime | None = None,
) -> SubmitResult:
    """Store one judgment per aspect for a pair reserved to this worker; refuse anything else with a 4xx.

    ``scores`` are the per-image scores (left, right) per aspect, required when the campaign asks for them.
    """
    now = now or timezone.now()
    numbers = judgment_form_validate(
        campaign=campaign, aspects=aspects, choices=choices, rationales=rationales, scores=scores
    )
    if annotator.status == Annotator.Status.BLOCKED:
        raise AssignmentError("Your account cannot submit labels.", status=403)
    if campaign.status != Campaign.Status.ACTIVE:
        raise AssignmentError("This campaign is not open for labeling right now.", status=409)
    if connection.vendor == "postgresql":
        stored = _submit_reserved_statement(
            campaign=campaign,
            aspects=aspects,
            assignment_id=assignment_id,
            annotator=annotator,
            choices=choices,
            rationales=rationales,
            scores=numbers,
            now=now,
        )
        if stored is not None:
            return stored
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
            assignment=assignment,
            pair=pair,
            aspects=aspects,
            choices=choices,
            rationales=rationales,
            scores=numbers,
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
        _campaign_worker_count(
            campaign=campaign, assignment=assignment, annotator=annotator, now=now, gold=pair.is_gold
        )
        # The general path reads the counters back (one query): a slow submission can be the one that
        # brings a mostly-too-fast worker to the campaign's minimum for the speed check.
        link = CampaignWorker.objects.get(campaign=campaign, annotator=annotator)
        if _status_may_change(assignment=assignment, link=link):
            annotator_status_refresh(annotator=annotator, campaign=campaign, link=link)
    complete = not pair.is_gold and pair.slots_submitted + 1 >= campaign.humans_per_pair
    return SubmitResult(assignment=assignment, pair_complete=complete)


# One round trip for a pair still reserved to this worker. `answers` holds the form (aspect, side,
# rationale); sides become canonical A/B/tie here with the assignment's `swapped`, like canonical_choice.
# The assignment UPDATE re-checks status = 'reserved' after waiting for a concurrent submit's row lock,
# so a double submit gets no row and nothing else in the statement runs for it. The worker's counters are
# an upsert, so a worker without an enrolment row yet (a submit without the screen) is counted all the same.
_CANONICAL = "CASE WHEN v.side = 'tie' THEN 'tie' WHEN (v.side = 'left') <> {swapped} THEN 'A' ELSE 'B' END"
_SECONDS = "GREATEST(0, EXTRACT(EPOCH FROM %(now)s - COALESCE(a.shown_at, a.created_at)))::float8"
_LINK_FIELDS = ["id", "campaign_id", "annotator_id", "submitted", "skipped", "too_fast", "seconds_total",
                "gold_pairs", "gold_answers", "gold_correct", "last_active_at"]  # fmt: skip
_SUBMIT_SQL = f"""
WITH answers AS (
    SELECT * FROM unnest(%(aspect_ids)s::bigint[], %(keys)s::text[], %(sides)s::text[], %(rationales)s::text[],
                         %(score_left)s::float8[], %(score_right)s::float8[])
        AS v(aspect_id, key, side, rationale, score_left, score_right)
), done AS (
    UPDATE annotate_assignment a SET
        status = 'submitted', submitted_at = %(now)s, seconds_spent = {_SECONDS},
        too_fast = {_SECONDS} < %(min_seconds)s,
        gold_total = CASE WHEN p.is_gold THEN (
            SELECT count(*) FROM answers v WHERE COALESCE(p.gold_answers ->> v.key, '') <> ''
        ) ELSE 0 END,
        gold_correct = CASE WHEN p.is_gold THEN (
            SELECT count(*) FROM answers v WHERE p.gold_answers ->> v.key = {_CANONICAL.format(swapped="a.swapped")}
        ) ELSE 0 END
    FROM annotate_pair p
    WHERE a.id = %(assignment)s AND a.annotator_id = %(annotator)s AND a.campaign_id = %(campaign)s
      AND a.status = 'reserved' AND p.id = a.pair_id
    RETURNING a.id, a.pair_id, a.swapped, a.created_at, a.shown_at, a.expires_at, a.seconds_spent,
              a.too_fast, a.gold_total, a.gold_correct, p.is_gold
), judged AS (
    INSERT INTO annotate_judgment (
        pair_id, annotator_id, aspect_id, trial, choice, presented_order, score_a, score_b, rationale,
        duration_s, template_version, assignment_id, created_at
    )
    SELECT done.pair_id, %(annotator)s, v.aspect_id, 1, {_CANONICAL.format(swapped="done.swapped")},
           CASE WHEN done.swapped THEN 'BA' ELSE 'AB' END,
           CASE WHEN done.swapped THEN v.score_right ELSE v.score_left END,
           CASE WHEN done.swapped THEN v.score_left ELSE v.score_right END,
           v.rationale, done.seconds_spent, '', done.id, %(now)s
    FROM done, answers v
), counted AS (
    UPDATE annotate_pair p SET slots_submitted = p.slots_submitted + 1 FROM done WHERE p.id = done.pair_id
    RETURNING p.slots_submitted
), link AS (
    INSERT INTO annotate_campaignworker AS w (
        campaign_id, annotator_id, crowd_params, submitted, skipped, too_fast, seconds_total, gold_pairs,
        gold_answers, gold_correct, started_at, last_active_at
    )
    SELECT %(campaign)s, %(annotator)s, '{{}}', 1, 0, done.too_fast::int, done.seconds_spent,
           done.is_gold::int, done.gold_total, done.gold_correct, %(now)s, %(now)s
    FROM done
    ON CONFLICT (campaign_id, annotator_id) DO UPDATE SET
        submitted = w.submitted + 1, too_fast = w.too_fast + EXCLUDED.too_fast,
        seconds_total = w.seconds_total + EXCLUDED.seconds_total, gold_pairs = w.gold_pairs + EXCLUDED.gold_pairs,
        gold_answers = w.gold_answers + EXCLUDED.gold_answers,
        gold_correct = w.gold_correct + EXCLUDED.gold_correct, last_active_at = EXCLUDED.last_active_at
    RETURNING {", ".join(f"w.{name}" for name in _LINK_FIELDS)}
)
SELECT done.*, counted.slots_submitted, link.* FROM done, counted, link
"""


def _submit_reserved_statement(
    *,
    campaign: Campaign,
    aspects: list[Aspect],
    assignment_id: int,
    annotator: Annotator,
    choices: dict[str, str],
    rationales: dict[str, str],
    scores: dict[str, tuple[int, int]],
    now: datetime,
) -> SubmitResult | None:
    """Submit a pair reserved to this worker in one PostgreSQL statement; None when it is not reserved."""
    params: dict[str, Any] = {
        "assignment": assignment_id,
        "annotator": annotator.pk,
        "campaign": campaign.pk,
        "now": now,
        "min_seconds": campaign.min_seconds_per_pair,
        "aspect_ids": [aspect.pk for aspect in aspects],
        "keys": [aspect.key for aspect in aspects],
        "sides": [choices[aspect.key] for aspect in aspects],
        "rationales": [rationales.get(aspect.key, "").strip() for aspect in aspects],
        # float8 arrays even when no scores are asked for (NULLs), so the statement has one shape.
        "score_left": [_score(scores, aspect.key, 0) for aspect in aspects],
        "score_right": [_score(scores, aspect.key, 1) for aspect in aspects],
    }
    # Inside a caller's transaction a failed statement must roll back to a savepoint; on its own, one
    # statement is atomic already and needs no BEGIN/COMMIT round trips.
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(_SUBMIT_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return None
    (pk, pair_id, swapped, created_at, shown_at, expires_at, seconds, too_fast, gold_total, gold_correct,
     is_gold, slots_submitted, *link_row) = row  # fmt: skip
    assignment = Assignment(
        pk=pk,
        pair_id=pair_id,
        annotator=annotator,
        campaign=campaign,
        status=Assignment.Status.SUBMITTED,
        swapped=swapped,
        created_at=created_at,
        shown_at=shown_at,
        expires_at=expires_at,
        submitted_at=now,
        seconds_spent=seconds,
        too_fast=too_fast,
        gold_total=gold_total,
        gold_correct=gold_correct,
    )
    link = CampaignWorker.from_db(connection.alias, _LINK_FIELDS, link_row)
    if _status_may_change(assignment=assignment, link=link):
        annotator_status_refresh(annotator=annotator, campaign=campaign, link=link)
    complete = not is_gold and slots_submitted >= campaign.humans_per_pair
    return SubmitResult(assignment=assignment, link=link, pair_complete=complete)


def _status_may_change(*, assignment: Assignment, link: CampaignWorker) -> bool:
    """Whether this submission can move the worker's automatic status (checked without a query).

    A too-fast or gold submission can; so can any submission of a worker with too-fast ones on record,
    because the share and the number of submissions both move (the one that reaches the campaign's
    minimum may itself be slow).
    """
    return bool(assignment.too_fast or assignment.gold_total or link.too_fast)


def _score(scores: dict[str, tuple[int, int]], key: str, side: int) -> float | None:
    found = scores.get(key)
    return None if found is None else float(found[side])


def _judgments_build(
    *,
    assignment: Assignment,
    pair: Pair,
    aspects: list[Aspect],
    choices: dict[str, str],
    rationales: dict[str, str],
    scores: dict[str, tuple[int, int]],
) -> list[Judgment]:
    order = "BA" if assignment.swapped else "AB"

    def canonical_scores(key: str) -> tuple[float | None, float | None]:
        left, right = _score(scores, key, 0), _score(scores, key, 1)
        return (right, left) if assignment.swapped else (left, right)

    return [
        Judgment(
            pair=pair,
            annotator_id=assignment.annotator_id,
            aspect=aspect,
            choice=canonical_choice(side=choices[aspect.key], swapped=assignment.swapped),
            presented_order=order,
            score_a=canonical_scores(aspect.key)[0],
            score_b=canonical_scores(aspect.key)[1],
            rationale=rationales.get(aspect.key, "").strip(),
            duration_s=assignment.seconds_spent,
            assignment=assignment,
        )
        for aspect in aspects
    ]


def _campaign_worker_count(
    *, campaign: Campaign, assignment: Assignment, annotator: Annotator, now: datetime, gold: bool
) -> None:
    counters = {
        "submitted": F("submitted") + 1,
        "too_fast": F("too_fast") + int(assignment.too_fast),
        "seconds_total": F("seconds_total") + (assignment.seconds_spent or 0.0),
        "gold_pairs": F("gold_pairs") + int(gold),
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
        and link.submitted >= max(1, campaign.min_submissions_for_flag)
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


@dataclass(frozen=True)
class UndoResult:
    """The assignment back on the worker's screen, and its answers as the form had them."""

    assignment: Assignment
    values: dict[str, str]


def judgment_undo(
    *, campaign: Campaign, annotator: Annotator, assignment_id: int, now: datetime | None = None
) -> UndoResult:
    """Take back the worker's last submission while its pair is not complete: the pair is theirs again.

    The judgments are deleted, every counter the submission moved (the pair's, the worker's) moves back,
    and the assignment is reserved to the worker again with its answers returned for the form. A worker
    keeps at most LOOKAHEAD reservations, so the newest extra one goes back to the pool.
    """
    from annotate.services.assignments import LOOKAHEAD, _release_slot

    now = now or timezone.now()
    if annotator.status == Annotator.Status.BLOCKED:
        raise AssignmentError("Your account cannot change labels.", status=403)
    if campaign.status != Campaign.Status.ACTIVE:
        raise AssignmentError("This campaign is not open for labeling right now.", status=409)
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("pair")
            .filter(pk=assignment_id, annotator=annotator, campaign=campaign)
            .first()
        )
        if assignment is None or assignment.status != Assignment.Status.SUBMITTED:
            raise AssignmentError("There is no submission of yours to undo here.", status=404)
        later = Assignment.objects.filter(
            annotator=annotator,
            campaign=campaign,
            status=Assignment.Status.SUBMITTED,
            submitted_at__gt=assignment.submitted_at,
        )
        if later.exists():
            raise AssignmentError("Only your last submission can be undone.", status=409)
        pair = Pair.objects.select_for_update().get(pk=assignment.pair_id)
        if not pair.is_gold and pair.slots_submitted >= campaign.humans_per_pair:
            raise AssignmentError(
                "This pair has all its judgments now, so your answer can no longer be undone.", status=409
            )
        judgments = list(assignment.judgments.select_related("aspect"))
        values: dict[str, str] = {}
        for judgment in judgments:
            key = judgment.aspect.key
            side = "tie"
            if judgment.choice != Judgment.Choice.TIE:
                side = "left" if (judgment.choice == Judgment.Choice.A) != assignment.swapped else "right"
            values[f"choice-{key}"] = side
            values[f"rationale-{key}"] = judgment.rationale
            left, right = (
                (judgment.score_b, judgment.score_a)
                if assignment.swapped
                else (judgment.score_a, judgment.score_b)
            )
            if left is not None and right is not None:
                values[f"score-left-{key}"], values[f"score-right-{key}"] = f"{left:g}", f"{right:g}"
        Judgment.objects.filter(assignment=assignment).delete()
        Pair.objects.filter(pk=pair.pk).update(slots_submitted=F("slots_submitted") - 1)
        CampaignWorker.objects.filter(campaign=campaign, annotator=annotator).update(
            submitted=F("submitted") - 1,
            too_fast=F("too_fast") - int(assignment.too_fast),
            seconds_total=F("seconds_total") - (assignment.seconds_spent or 0.0),
            gold_pairs=F("gold_pairs") - int(pair.is_gold),
            gold_answers=F("gold_answers") - assignment.gold_total,
            gold_correct=F("gold_correct") - assignment.gold_correct,
            last_active_at=now,
        )
        changed_quality = assignment.too_fast or assignment.gold_total
        assignment.status = Assignment.Status.RESERVED
        assignment.submitted_at = None
        assignment.seconds_spent = None
        assignment.too_fast = False
        assignment.gold_total = assignment.gold_correct = 0
        assignment.expires_at = now + timedelta(minutes=campaign.reservation_minutes)
        assignment.save(
            update_fields=[
                "status", "submitted_at", "seconds_spent", "too_fast", "gold_total", "gold_correct", "expires_at"
            ]
        )  # fmt: skip
        held = list(
            Assignment.objects.filter(
                annotator=annotator, campaign=campaign, status=Assignment.Status.RESERVED
            )
            .order_by("pk")
            .values_list("pk", "pair_id")
        )
        for extra_pk, extra_pair in held[LOOKAHEAD:]:
            if extra_pk == assignment.pk:
                continue
            if Assignment.objects.filter(pk=extra_pk, status=Assignment.Status.RESERVED).update(
                status=Assignment.Status.EXPIRED
            ):
                _release_slot(pair_id=extra_pair)
        if changed_quality:
            link = CampaignWorker.objects.get(campaign=campaign, annotator=annotator)
            annotator_status_refresh(annotator=annotator, campaign=campaign, link=link)
    return UndoResult(assignment=assignment, values=values)
