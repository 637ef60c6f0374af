"""Handing pairs to human workers: reservations, lookahead, expiry and skips.

The next pair is chosen with one index range scan on (campaign, slots_taken DESC, id): `Pair.slots_taken`
counts live reservations plus submissions and is changed in the same transaction as every reservation,
submission, skip and expiry, so no request counts assignments over the campaign. Pairs closest to their
overlap come first, so finished pairs accumulate evenly.

Two guards make over-assignment impossible under concurrency: on PostgreSQL the candidate row is locked
with `FOR UPDATE SKIP LOCKED` (workers racing for the same pair take the next one instead of waiting), and
on every database the slot is taken with a conditional `UPDATE ... WHERE slots_taken < overlap` whose row
count says whether it succeeded (this is what keeps SQLite correct, where row locks do not exist). The
overlap in that guard is read from the campaign row in the same statement, so a campaign cached by the
web process never lets a pair past a lowered overlap. The unique (pair, annotator) constraint makes it
impossible to give one worker the same pair twice.

On PostgreSQL a reservation is one statement (pick and lock, take the slot, insert the assignment), so it
costs one round trip; other databases run the same three steps as separate ORM queries in a transaction.

A worker holds at most two reservations per campaign: the pair on screen and the next one, whose images
the browser preloads; submitting shows the next pair at once and reserves a new next one.
"""

from __future__ import annotations

import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Subquery
from django.utils import timezone

from annotate.models import Annotator, Assignment, Campaign, CampaignWorker, Image, Pair, Prompt

LOOKAHEAD = 2  # reservations a worker holds at once: the pair on screen and the preloaded next one
EXPIRE_BATCH = 200
EXPIRY_CHECK_EVERY_S = 2.0  # reclaiming runs on demand this often per process, besides the periodic task
SKIP_REASONS = {
    "image_broken": "An image did not load or is broken",
    "prompt_unclear": "The prompt is unclear",
    "offensive": "Offensive or disturbing content",
}


class AssignmentError(Exception):
    """A request about an assignment that must be refused; `status` is the HTTP status to answer."""

    def __init__(self, message: str, *, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class WorkerQueue:
    """What a worker sees: the pair on screen and the one after it (either may be None)."""

    current: Assignment | None
    lookahead: Assignment | None


def campaign_worker_get(*, campaign: Campaign, annotator: Annotator) -> CampaignWorker:
    """The worker's enrolment row in the campaign, created on first visit."""
    link, _ = CampaignWorker.objects.get_or_create(campaign=campaign, annotator=annotator)
    return link


def _exclude_seen(queryset, annotator: Annotator):
    seen = Assignment.objects.filter(pair=OuterRef("pk"), annotator=annotator)
    return queryset.filter(~Exists(seen))


def _lock_candidate(queryset) -> int | None:
    if connection.features.has_select_for_update_skip_locked:
        queryset = queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset.values_list("pk", flat=True).first()


def pair_slot_take(*, pair_id: int, campaign_id: int | None) -> bool:
    """Compare-and-set on the pair's counter; False when another worker took the last slot first.

    `campaign_id` bounds the counter by that campaign's overlap, read in the same statement; None (gold
    pairs) takes a slot without bound.
    """
    rows = Pair.objects.filter(pk=pair_id)
    if campaign_id is not None:
        overlap = Campaign.objects.filter(pk=campaign_id).values("humans_per_pair")[:1]
        rows = rows.filter(slots_taken__lt=Subquery(overlap))
    return rows.update(slots_taken=F("slots_taken") + 1) == 1


def _release_slot(*, pair_id: int, count: int = 1) -> None:
    Pair.objects.filter(pk=pair_id).update(slots_taken=F("slots_taken") - count)


def _reserve_one(*, campaign: Campaign, annotator: Annotator, gold: bool, now: datetime) -> Assignment | None:
    swapped = random.random() < 0.5
    expires_at = now + timedelta(minutes=campaign.reservation_minutes)
    if connection.vendor == "postgresql":
        return _reserve_one_statement(
            campaign=campaign, annotator=annotator, gold=gold, swapped=swapped, now=now, expires_at=expires_at
        )
    overlap = None if gold else campaign.humans_per_pair
    pairs = Pair.objects.filter(campaign=campaign, is_gold=gold)
    if gold:
        pairs = pairs.order_by("slots_taken", "pk")
    else:
        pairs = pairs.filter(slots_taken__lt=overlap).order_by("-slots_taken", "pk")
    for _attempt in range(5):
        try:
            with transaction.atomic():
                pair_id = _lock_candidate(_exclude_seen(pairs, annotator))
                if pair_id is None:
                    return None
                if not pair_slot_take(pair_id=pair_id, campaign_id=None if gold else campaign.pk):
                    continue  # lost a race (SQLite, or a row freed and refilled meanwhile): pick again
                return Assignment.objects.create(
                    pair_id=pair_id,
                    annotator=annotator,
                    campaign=campaign,
                    swapped=swapped,
                    expires_at=expires_at,
                )
        except IntegrityError:
            # The same worker reserved this pair in a parallel request (two tabs); the rollback gave the
            # slot back, so try the next pair.
            continue
    return None


# Pick the first pair in index order that this worker has not seen and nobody has locked, take a slot
# while the campaign's current overlap allows it, and insert the assignment: one round trip. The literal
# is_gold tests let the planner use the partial indexes pair_next / pair_next_gold. It returns what the
# screen shows of the pair, so showing it needs no second query.
_RESERVE_SQL = """
WITH candidate AS (
    SELECT p.id FROM annotate_pair p
    WHERE p.campaign_id = %(campaign)s AND {pool}
      AND NOT EXISTS (
          SELECT 1 FROM annotate_assignment a WHERE a.pair_id = p.id AND a.annotator_id = %(annotator)s
      )
    ORDER BY {order}
    LIMIT 1
    FOR UPDATE OF p SKIP LOCKED
), taken AS (
    UPDATE annotate_pair p SET slots_taken = p.slots_taken + 1
    FROM candidate WHERE p.id = candidate.id {bound}
    RETURNING p.id
), fresh AS (
    INSERT INTO annotate_assignment (
        pair_id, annotator_id, campaign_id, status, swapped, expires_at, created_at, too_fast, skip_reason,
        gold_total, gold_correct
    )
    SELECT taken.id, %(annotator)s, %(campaign)s, %(status)s, %(swapped)s, %(expires_at)s, %(now)s, false, '',
           0, 0
    FROM taken
    RETURNING id, pair_id, created_at
)
SELECT fresh.id, fresh.created_at, {pair_columns}
FROM fresh
JOIN annotate_pair p ON p.id = fresh.pair_id
JOIN annotate_prompt pr ON pr.id = p.prompt_id
JOIN annotate_image ia ON ia.id = p.image_a_id
JOIN annotate_image ib ON ib.id = p.image_b_id
"""
# What the labeling screen shows of a freshly reserved pair; other fields load on access.
_PAIR_FIELDS = ["id", "campaign_id", "prompt_id", "image_a_id", "image_b_id", "is_gold"]
_PROMPT_FIELDS = ["id", "text"]
_IMAGE_FIELDS = ["id", "file", "width", "height"]
_PAIR_COLUMNS = ", ".join(
    [f"p.{name}" for name in _PAIR_FIELDS]
    + [f"pr.{name}" for name in _PROMPT_FIELDS]
    + [f"{alias}.{name}" for alias in ("ia", "ib") for name in _IMAGE_FIELDS]
)
_OVERLAP = "(SELECT c.humans_per_pair FROM annotate_campaign c WHERE c.id = %(campaign)s)"
_RESERVE_REGULAR = _RESERVE_SQL.format(
    pool=f"NOT p.is_gold AND p.slots_taken < {_OVERLAP}",
    order="p.slots_taken DESC, p.id",
    bound=f"AND p.slots_taken < {_OVERLAP}",
    pair_columns=_PAIR_COLUMNS,
)
_RESERVE_GOLD = _RESERVE_SQL.format(
    pool="p.is_gold", order="p.slots_taken, p.id", bound="", pair_columns=_PAIR_COLUMNS
)


def _pair_from_row(values: list) -> Pair:
    """The pair, its prompt and both images from the reservation's row (see _PAIR_COLUMNS)."""
    alias = connection.alias
    n_pair, n_prompt, n_image = len(_PAIR_FIELDS), len(_PROMPT_FIELDS), len(_IMAGE_FIELDS)
    pair = Pair.from_db(alias, _PAIR_FIELDS, values[:n_pair])
    pair.prompt = Prompt.from_db(alias, _PROMPT_FIELDS, values[n_pair : n_pair + n_prompt])
    images = values[n_pair + n_prompt :]
    pair.image_a = Image.from_db(alias, _IMAGE_FIELDS, images[:n_image])
    pair.image_b = Image.from_db(alias, _IMAGE_FIELDS, images[n_image:])
    return pair


def _reserve_one_statement(
    *,
    campaign: Campaign,
    annotator: Annotator,
    gold: bool,
    swapped: bool,
    now: datetime,
    expires_at: datetime,
) -> Assignment | None:
    params: dict[str, int | bool | str | datetime] = {
        "campaign": campaign.pk,
        "annotator": annotator.pk,
        "status": Assignment.Status.RESERVED,
        "swapped": swapped,
        "expires_at": expires_at,
        "now": now,
    }
    # Inside a caller's transaction a failed statement must roll back to a savepoint; on its own, one
    # statement is atomic already and needs no BEGIN/COMMIT round trips.
    for _attempt in range(5):
        try:
            savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
            with savepoint, connection.cursor() as cursor:
                cursor.execute(_RESERVE_GOLD if gold else _RESERVE_REGULAR, params)
                row = cursor.fetchone()
        except IntegrityError:
            continue  # the same worker reserved this pair in a parallel request (two tabs): pick again
        if row is None:
            return None  # no pair left that this worker has not seen and nobody else holds locked
        assignment_id, created_at, *pair_row = row
        return Assignment(
            pk=assignment_id,
            pair=_pair_from_row(pair_row),
            annotator=annotator,
            campaign=campaign,
            status=Assignment.Status.RESERVED,
            swapped=swapped,
            expires_at=expires_at,
            created_at=created_at,
        )
    return None


def assignment_reserve(
    *, campaign: Campaign, annotator: Annotator, now: datetime | None = None
) -> Assignment | None:
    """Reserve one new pair for the worker (a gold pair at the campaign's gold rate); None when none is left."""
    now = now or timezone.now()
    if campaign.gold_rate > 0 and random.random() < campaign.gold_rate:
        gold = _reserve_one(campaign=campaign, annotator=annotator, gold=True, now=now)
        if gold is not None:
            return gold
    return _reserve_one(campaign=campaign, annotator=annotator, gold=False, now=now)


def assignments_expire(*, now: datetime | None = None, limit: int = EXPIRE_BATCH) -> int:
    """Return reservations past their expiry to the pool; returns how many expired."""
    now = now or timezone.now()
    due = Assignment.objects.filter(status=Assignment.Status.RESERVED, expires_at__lt=now)
    # A plain index probe first: almost every call finds nothing and must stay cheap.
    if not due.exists():
        return 0
    with transaction.atomic():
        locked = due.order_by("expires_at")
        if connection.features.has_select_for_update_skip_locked:
            locked = locked.select_for_update(skip_locked=True)
        rows = list(locked.values_list("pk", "pair_id")[:limit])
        if not rows:
            return 0
        Assignment.objects.filter(pk__in=[pk for pk, _ in rows]).update(status=Assignment.Status.EXPIRED)
        per_pair: dict[int, int] = {}
        for _pk, pair_id in rows:
            per_pair[pair_id] = per_pair.get(pair_id, 0) + 1
        # Sorted, so two concurrent expiry runs lock pair rows in the same order and cannot deadlock.
        for pair_id in sorted(per_pair):
            _release_slot(pair_id=pair_id, count=per_pair[pair_id])
    return len(rows)


_expiry_checked_at = 0.0


def assignments_expire_due(*, now: datetime, every_s: float = EXPIRY_CHECK_EVERY_S) -> int:
    """Expire due reservations at most every few seconds per process (the periodic task does the rest)."""
    global _expiry_checked_at
    clock = time.monotonic()
    if clock - _expiry_checked_at < every_s:
        return 0
    _expiry_checked_at = clock
    return assignments_expire(now=now)


def _touch(*, assignment: Assignment, campaign: Campaign, now: datetime) -> bool:
    """Mark the pair as on screen and extend its reservation; False when expiry took it back meanwhile."""
    window = timedelta(minutes=campaign.reservation_minutes)
    if assignment.shown_at is not None and assignment.expires_at - now > window / 2:
        return True  # shown and fresh: a reload needs no write (the expiry check above kept it reserved)
    # Plain SQL: the ORM's update compiled for about a tenth of a labeling request's CPU.
    shown_at = assignment.shown_at or now
    with connection.cursor() as cursor:
        cursor.execute(_TOUCH_SQL, [now + window, shown_at, assignment.pk, Assignment.Status.RESERVED])
        updated = cursor.rowcount
    assignment.expires_at, assignment.shown_at = now + window, shown_at
    return updated == 1


_TOUCH_SQL = "UPDATE annotate_assignment SET expires_at = %s, shown_at = %s WHERE id = %s AND status = %s"


# The worker's live reservations with what the screen shows of their pairs. Plain SQL because the ORM
# spends about a millisecond of CPU compiling the four-table select_related on every labeling request.
_HELD_SQL = f"""
SELECT a.id, a.swapped, a.expires_at, a.created_at, a.shown_at, {_PAIR_COLUMNS}
FROM annotate_assignment a
JOIN annotate_pair p ON p.id = a.pair_id
JOIN annotate_prompt pr ON pr.id = p.prompt_id
JOIN annotate_image ia ON ia.id = p.image_a_id
JOIN annotate_image ib ON ib.id = p.image_b_id
WHERE a.annotator_id = %s AND a.campaign_id = %s AND a.status = %s
ORDER BY a.id
LIMIT {LOOKAHEAD}
"""


def _aware(value: datetime) -> datetime:
    # SQLite hands plain SQL its stored UTC times without a zone; PostgreSQL returns them aware.
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)


def _held(*, campaign: Campaign, annotator: Annotator) -> list[Assignment]:
    with connection.cursor() as cursor:
        cursor.execute(_HELD_SQL, [annotator.pk, campaign.pk, Assignment.Status.RESERVED])
        rows = cursor.fetchall()
    return [
        Assignment(
            pk=pk,
            pair=_pair_from_row(list(pair_row)),
            annotator=annotator,
            campaign=campaign,
            status=Assignment.Status.RESERVED,
            swapped=swapped,
            expires_at=_aware(expires_at),
            created_at=_aware(created_at),
            shown_at=None if shown_at is None else _aware(shown_at),
        )
        for pk, swapped, expires_at, created_at, shown_at, *pair_row in rows
    ]


def worker_queue_fill(
    *, campaign: Campaign, annotator: Annotator, link: CampaignWorker, now: datetime | None = None
) -> WorkerQueue:
    """The worker's pair on screen and the next one, reserving new pairs within the quota as needed."""
    now = now or timezone.now()
    if annotator.status == Annotator.Status.BLOCKED or campaign.status != Campaign.Status.ACTIVE:
        return WorkerQueue(current=None, lookahead=None)
    assignments_expire_due(now=now)
    held = _held(campaign=campaign, annotator=annotator)
    while held and not _touch(assignment=held[0], campaign=campaign, now=now):
        held.pop(0)
    quota_left = None if campaign.worker_quota is None else campaign.worker_quota - link.submitted - len(held)
    while len(held) < LOOKAHEAD and (quota_left is None or quota_left > 0):
        fresh = assignment_reserve(campaign=campaign, annotator=annotator, now=now)
        if fresh is None:
            break
        if connection.vendor != "postgresql":  # there the reservation returned the pair with its images
            fresh = Assignment.objects.select_related("pair__prompt", "pair__image_a", "pair__image_b").get(
                pk=fresh.pk
            )
        held.append(fresh)
        if quota_left is not None:
            quota_left -= 1
        if len(held) == 1:
            _touch(assignment=held[0], campaign=campaign, now=now)
    return WorkerQueue(current=held[0] if held else None, lookahead=held[1] if len(held) > 1 else None)


def assignment_skip(
    *, assignment_id: int, annotator: Annotator, reason: str, now: datetime | None = None
) -> None:
    """The worker cannot judge this pair: record why and give the slot back to the pool."""
    if reason not in SKIP_REASONS:
        raise AssignmentError(f"Unknown skip reason {reason!r}.", status=400)
    now = now or timezone.now()
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update().filter(pk=assignment_id, annotator=annotator).first()
        )
        if assignment is None:
            raise AssignmentError("This pair is not reserved to you.", status=404)
        if assignment.status == Assignment.Status.SKIPPED:
            return  # a repeated click: already done
        if assignment.status != Assignment.Status.RESERVED:
            raise AssignmentError("This pair is no longer reserved to you.", status=409)
        assignment.status = Assignment.Status.SKIPPED
        assignment.skip_reason = reason
        assignment.submitted_at = now
        assignment.save(update_fields=["status", "skip_reason", "submitted_at"])
        _release_slot(pair_id=assignment.pair_id)
        CampaignWorker.objects.filter(campaign=assignment.campaign_id, annotator=annotator).update(
            skipped=F("skipped") + 1, last_active_at=now
        )
