"""Judgments in and out as JSONL, the app's own format (docs/judgments-jsonl.md).

Exports leave rejected judgments out unless asked (then each carries ``rejected`` and its reason), and can
pseudonymise human annotators: a keyed hash (HMAC-SHA256 with the site's SECRET_KEY) replaces the username,
stable across exports of one installation and not reversible without the key.

Import is all or nothing: every line is parsed and checked against the database first, and only a file
without a single error is written, in one transaction. Re-importing a file changes nothing: a line whose
judgment (pair, annotator, aspect, trial) already exists with the same choice is skipped; one that exists
with a different choice is an error, never an overwrite.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from annotate.models import Annotator, Aspect, Campaign, Image, Judgment, Pair
from annotate.services.campaigns import crowdworker_create, human_annotator_for
from core.storage_io import store_stream
from pipeline.models import AIJudgeConfig
from pipeline.services.judges import judge_annotator

MAX_ERRORS = 50
IMPORT_BATCH = 2000
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MIRROR_CHOICE = {"A": "B", "B": "A", "tie": "tie"}
_MIRROR_ORDER = {"AB": "BA", "BA": "AB"}
KNOWN_FIELDS = {
    "campaign",
    "pair",
    "prompt",
    "image_a",
    "image_b",
    "annotator",
    "annotator_kind",
    "aspect",
    "choice",
    "score_a",
    "score_b",
    "rationale",
    "trial",
    "presented_order",
    "duration_s",
    "rejected",
    "rejection_reason",
}


class _Writer(Protocol):
    def write(self, text: str, /) -> Any: ...


class JudgmentImportError(Exception):
    """The file was refused; ``errors`` name the line and field of each problem (nothing was stored)."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        shown = errors[:MAX_ERRORS]
        more = f"\n... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        super().__init__("\n".join(shown) + more)


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    lines: int
    created: int
    unchanged: int
    annotators_created: int


@dataclass
class _Line:
    number: int
    campaign: Campaign
    pair: Pair
    annotator_key: tuple[str, str]  # (kind, name)
    aspect: Aspect
    choice: str
    score_a: float | None
    score_b: float | None
    rationale: str
    trial: int
    presented_order: str
    duration_s: float | None
    rejection_reason: str | None = None  # None: not rejected


def annotator_pseudonym(name: str) -> str:
    """A stable, non-reversible stand-in for a human's username (keyed with the site's SECRET_KEY)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"judgments-export|{name}".encode(), hashlib.sha256)
    return f"worker-{digest.hexdigest()[:16]}"


def _export_row(judgment: Judgment, *, pseudonymise: bool = False) -> dict[str, Any]:
    annotator = judgment.annotator
    if annotator.kind == Annotator.Kind.AI:
        judge = getattr(annotator, "ai_judge", None)
        name = judge.name if judge is not None else annotator.name
    else:
        name = annotator.user.get_username() if annotator.user else annotator.name
        if pseudonymise:
            name = annotator_pseudonym(name)
    pair = judgment.pair
    extra: dict[str, Any] = {}
    if judgment.rejected_at is not None:
        extra = {"rejected": True, "rejection_reason": judgment.rejection_reason}
    return {
        "campaign": pair.campaign.slug,
        "pair": pair.pk,
        "prompt": pair.prompt.text,
        "image_a": pair.image_a.sha256,
        "image_b": pair.image_b.sha256,
        "annotator": name,
        "annotator_kind": annotator.kind,
        "aspect": judgment.aspect.key,
        "choice": judgment.choice,
        "score_a": judgment.score_a,
        "score_b": judgment.score_b,
        "rationale": judgment.rationale,
        "trial": judgment.trial,
        "presented_order": judgment.presented_order,
        "duration_s": judgment.duration_s,
        **extra,
    }


def judgments_export_lines(
    *,
    campaign_slugs: Iterable[str] | None = None,
    include_rejected: bool = False,
    pseudonymise: bool = False,
) -> Iterator[str]:
    """Every judgment (of the given campaigns) as one JSON line each, in id order, streamed.

    Rejected judgments are left out unless ``include_rejected``; ``pseudonymise`` replaces human usernames
    with keyed hashes (annotator_pseudonym).
    """
    judgments = Judgment.objects.select_related(
        "pair__campaign",
        "pair__prompt",
        "pair__image_a",
        "pair__image_b",
        "annotator__user",
        "annotator__ai_judge",
        "aspect",
    ).order_by("id")
    if campaign_slugs:
        slugs = list(campaign_slugs)
        missing = set(slugs) - set(Campaign.objects.filter(slug__in=slugs).values_list("slug", flat=True))
        if missing:
            raise ValueError(f"Unknown campaign(s): {', '.join(sorted(missing))}")
        judgments = judgments.filter(pair__campaign__slug__in=slugs)
    if not include_rejected:
        judgments = judgments.filter(rejected_at__isnull=True)
    for judgment in judgments.iterator(chunk_size=IMPORT_BATCH):
        yield json.dumps(_export_row(judgment, pseudonymise=pseudonymise), ensure_ascii=False) + "\n"


def judgments_export(
    *,
    out: _Writer,
    campaign_slugs: Iterable[str] | None = None,
    include_rejected: bool = False,
    pseudonymise: bool = False,
) -> int:
    """Write the JSONL export to ``out``; returns the number of judgments written."""
    count = 0
    for line in judgments_export_lines(
        campaign_slugs=campaign_slugs, include_rejected=include_rejected, pseudonymise=pseudonymise
    ):
        out.write(line)
        count += 1
    return count


def judgments_export_store(
    *, campaign: Campaign, include_rejected: bool = False, pseudonymise: bool = False
) -> tuple[str, int]:
    """The campaign's JSONL export written to storage (a temporary file, then streamed up in chunks: never
    the whole export in memory); returns (stored name, judgments written). Served by a signed link."""
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    suffix = "-pseudonymised" if pseudonymise else ""
    name = f"exports/judgments/{campaign.slug}-{stamp}-{secrets.token_hex(4)}{suffix}.jsonl"
    with tempfile.TemporaryFile() as spool:
        count = 0
        for line in judgments_export_lines(
            campaign_slugs=[campaign.slug], include_rejected=include_rejected, pseudonymise=pseudonymise
        ):
            spool.write(line.encode())
            count += 1
        spool.seek(0)
        return store_stream(name, spool, replace=False), count


class _Checker:
    """Parses and checks lines, caching database lookups; collects errors instead of raising."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.campaigns: dict[str, Campaign | None] = {}
        self.campaign_aspects: dict[int, dict[str, Aspect]] = {}
        self.images: dict[str, Image | None] = {}
        self.pairs_by_id: dict[int, Pair | None] = {}
        self.pairs_by_images: dict[tuple[int, int, int], Pair | None] = {}

    def error(self, number: int, field: str | None, message: str) -> None:
        where = f"line {number}, field '{field}'" if field else f"line {number}"
        self.errors.append(f"{where}: {message}")

    def campaign(self, slug: str) -> Campaign | None:
        if slug not in self.campaigns:
            self.campaigns[slug] = Campaign.objects.filter(slug=slug).first()
            found = self.campaigns[slug]
            if found is not None:
                self.campaign_aspects[found.pk] = {a.key: a for a in found.aspects.all()}
        return self.campaigns[slug]

    def image(self, sha256: str) -> Image | None:
        if sha256 not in self.images:
            self.images[sha256] = Image.objects.filter(sha256=sha256).first()
        return self.images[sha256]

    def pair_by_id(self, pk: int) -> Pair | None:
        if pk not in self.pairs_by_id:
            self.pairs_by_id[pk] = Pair.objects.select_related("prompt").filter(pk=pk).first()
        return self.pairs_by_id[pk]

    def pair_by_images(self, campaign: Campaign, first: Image, second: Image) -> Pair | None:
        low, high = sorted([first.pk, second.pk])
        key = (campaign.pk, low, high)
        if key not in self.pairs_by_images:
            self.pairs_by_images[key] = (
                Pair.objects.select_related("prompt")
                .filter(campaign=campaign, image_a_id=low, image_b_id=high)
                .first()
            )
        return self.pairs_by_images[key]

    def check(self, number: int, raw: str) -> _Line | None:
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            self.error(number, None, f"not valid JSON ({exc.msg} at column {exc.colno})")
            return None
        if not isinstance(row, dict):
            self.error(number, None, f"expected a JSON object, got {type(row).__name__}")
            return None
        before = len(self.errors)
        unknown = sorted(set(row) - KNOWN_FIELDS)
        if unknown:
            self.error(number, unknown[0], f"unknown field (known: {', '.join(sorted(KNOWN_FIELDS))})")

        def text(field: str, *, required: bool = True, default: str = "") -> str:
            value = row.get(field, None)
            if value is None:
                if required:
                    self.error(number, field, "is required")
                return default
            if not isinstance(value, str):
                self.error(number, field, f"expected a string, got {json.dumps(value)}")
                return default
            return value

        def number_or_null(field: str) -> float | None:
            value = row.get(field)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.error(number, field, f"expected a number or null, got {json.dumps(value)}")
                return None
            return float(value)

        choice = text("choice")
        if choice and choice not in _MIRROR_CHOICE:
            self.error(number, "choice", f"expected A, B or tie, got {choice!r}")
        kind = text("annotator_kind")
        if kind and kind not in (Annotator.Kind.HUMAN, Annotator.Kind.AI):
            self.error(number, "annotator_kind", f"expected human or ai, got {kind!r}")
        name = text("annotator").strip()
        if "annotator" in row and isinstance(row["annotator"], str) and not name:
            self.error(number, "annotator", "must not be empty")
        elif len(name) > 100:
            self.error(number, "annotator", "is longer than 100 characters")
        order = text("presented_order", required=False, default="AB")
        if order not in _MIRROR_ORDER:
            self.error(number, "presented_order", f"expected AB or BA, got {order!r}")
        trial = row.get("trial", 1)
        if isinstance(trial, bool) or not isinstance(trial, int) or trial < 1:
            self.error(number, "trial", f"expected an integer >= 1, got {json.dumps(trial)}")
            trial = 1
        rationale = text("rationale", required=False)
        score_a, score_b = number_or_null("score_a"), number_or_null("score_b")
        duration = number_or_null("duration_s")
        if duration is not None and duration < 0:
            self.error(number, "duration_s", f"expected a number >= 0, got {duration}")
        rejected = row.get("rejected", False)
        if not isinstance(rejected, bool):
            self.error(number, "rejected", f"expected true or false, got {json.dumps(rejected)}")
            rejected = False
        reason = text("rejection_reason", required=False)
        if reason and not rejected:
            self.error(number, "rejection_reason", "is given but the judgment is not rejected")
        elif len(reason) > 300:
            self.error(number, "rejection_reason", "is longer than 300 characters")

        campaign = None
        slug = text("campaign")
        if slug:
            campaign = self.campaign(slug)
            if campaign is None:
                self.error(number, "campaign", f"no campaign with slug {slug!r}")
        aspect = None
        key = text("aspect")
        if key and campaign is not None:
            aspect = self.campaign_aspects[campaign.pk].get(key)
            if aspect is None:
                known = ", ".join(sorted(self.campaign_aspects[campaign.pk]))
                self.error(number, "aspect", f"campaign {slug!r} has no aspect {key!r} (it has: {known})")

        pair, mirrored = self._pair(number, row, campaign)
        if len(self.errors) > before or campaign is None or aspect is None or pair is None:
            return None
        if mirrored:
            # The file names the pair's images the other way round: convert to canonical terms.
            choice, order, score_a, score_b = _MIRROR_CHOICE[choice], _MIRROR_ORDER[order], score_b, score_a
        return _Line(
            number=number,
            campaign=campaign,
            pair=pair,
            annotator_key=(kind, name),
            aspect=aspect,
            choice=choice,
            score_a=score_a,
            score_b=score_b,
            rationale=rationale,
            trial=trial,
            presented_order=order,
            duration_s=duration,
            rejection_reason=(reason or "rejected on import") if rejected else None,
        )

    def _pair(self, number: int, row: dict[str, Any], campaign: Campaign | None) -> tuple[Pair | None, bool]:
        images: dict[str, Image | None] = {}
        for field in ("image_a", "image_b"):
            value = row.get(field)
            if value is None:
                continue
            if not isinstance(value, str) or not _SHA256.match(value):
                self.error(number, field, f"expected a lowercase hex sha256, got {json.dumps(value)}")
                continue
            images[field] = self.image(value)
            if images[field] is None:
                self.error(number, field, f"no image with sha256 {value}")
        pair_id = row.get("pair")
        pair: Pair | None = None
        if pair_id is not None:
            if isinstance(pair_id, bool) or not isinstance(pair_id, int):
                self.error(number, "pair", f"expected an integer id, got {json.dumps(pair_id)}")
                return None, False
            pair = self.pair_by_id(pair_id)
            if pair is None:
                self.error(number, "pair", f"no pair with id {pair_id}")
                return None, False
            if campaign is not None and pair.campaign_id != campaign.pk:
                self.error(number, "pair", f"pair {pair_id} belongs to another campaign")
                return None, False
        elif campaign is not None:
            if "image_a" not in row or "image_b" not in row:
                self.error(number, "pair", "give the pair id, or both image_a and image_b")
                return None, False
            first, second = images.get("image_a"), images.get("image_b")
            if first is None or second is None:
                return None, False
            pair = self.pair_by_images(campaign, first, second)
            if pair is None:
                self.error(number, "image_a", f"campaign {campaign.slug!r} has no pair of these two images")
                return None, False
        if pair is None:
            return None, False
        first, second = images.get("image_a"), images.get("image_b")
        mirrored = False
        if first is not None and second is not None:
            if {first.pk, second.pk} != {pair.image_a_id, pair.image_b_id}:
                self.error(number, "image_a", f"images do not match pair {pair.pk}")
                return None, False
            mirrored = first.pk == pair.image_b_id
        prompt = row.get("prompt")
        if prompt is not None:
            if not isinstance(prompt, str):
                self.error(number, "prompt", f"expected a string, got {json.dumps(prompt)}")
            elif " ".join(prompt.split()) != " ".join(pair.prompt.text.split()):
                self.error(number, "prompt", f"does not match the prompt of pair {pair.pk}")
        return pair, mirrored


def _annotators_resolve(
    keys: set[tuple[str, str]], *, create: bool
) -> tuple[dict[tuple[str, str], Annotator | None], int]:
    """Annotators by (kind, name): humans by username, AI judges by AIJudgeConfig name; missing ones created."""
    found: dict[tuple[str, str], Annotator | None] = {}
    created = 0
    users = {
        u.get_username(): u
        for u in get_user_model().objects.filter(username__in=[n for k, n in keys if k == "human"])
    }
    configs = {c.name: c for c in AIJudgeConfig.objects.filter(name__in=[n for k, n in keys if k == "ai"])}
    for kind, name in sorted(keys):
        if kind == Annotator.Kind.HUMAN:
            user = users.get(name)
            if user is None and create:
                # A crowdworker account nobody can log in to until an admin sets a password.
                user = crowdworker_create(username=name)
                created += 1
            if user is None:
                found[(kind, name)] = None
            elif create:
                found[(kind, name)] = human_annotator_for(user=user)
            else:
                found[(kind, name)] = Annotator.objects.filter(user=user).first()
        else:
            config = configs.get(name)
            if config is None and create:
                # AIJudgeConfig has no "imported" provider; an OpenAI-compatible entry without a base URL,
                # marked in options, records the judge without making it callable.
                config = AIJudgeConfig.objects.create(
                    name=name,
                    provider=AIJudgeConfig.Provider.OPENAI,
                    model=name,
                    base_url="",
                    options={"imported": True},
                )
                created += 1
            if config is None:
                found[(kind, name)] = None
            elif create:
                found[(kind, name)] = judge_annotator(config)
            else:
                found[(kind, name)] = config.annotator
    return found, created


def judgments_import(*, lines: Iterable[str], dry_run: bool = False) -> ImportResult:
    """Import JSONL judgments all or nothing; raises JudgmentImportError naming line and field of each error."""
    checker = _Checker()
    parsed: list[_Line] = []
    count = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        count += 1
        line = checker.check(number, raw)
        if line is not None:
            parsed.append(line)

    seen: dict[tuple[int, tuple[str, str], int, int], int] = {}
    for line in parsed:
        key = (line.pair.pk, line.annotator_key, line.aspect.pk, line.trial)
        if key in seen:
            checker.error(
                line.number, None, f"the same judgment (pair, annotator, aspect, trial) as line {seen[key]}"
            )
        else:
            seen[key] = line.number

    existing_annotators, _ = _annotators_resolve({line.annotator_key for line in parsed}, create=False)
    known_ids = {a.pk for a in existing_annotators.values() if a is not None}
    existing: dict[tuple[int, int, int, int], str] = {}
    pair_ids = sorted({line.pair.pk for line in parsed})
    for start in range(0, len(pair_ids), IMPORT_BATCH):
        rows = Judgment.objects.filter(
            pair_id__in=pair_ids[start : start + IMPORT_BATCH], annotator_id__in=known_ids
        ).values_list("pair_id", "annotator_id", "aspect_id", "trial", "choice")
        existing.update({(p, a, s, t): c for p, a, s, t, c in rows})
    new_lines: list[_Line] = []
    unchanged = 0
    for line in parsed:
        annotator = existing_annotators.get(line.annotator_key)
        stored = existing.get((line.pair.pk, annotator.pk, line.aspect.pk, line.trial)) if annotator else None
        if stored is None:
            new_lines.append(line)
        elif stored == line.choice:
            unchanged += 1
        else:
            checker.error(
                line.number,
                "choice",
                f"{line.annotator_key[1]!r} already judged pair {line.pair.pk} on {line.aspect.key!r} "
                f"(trial {line.trial}) as {stored!r}; refusing to change it to {line.choice!r}",
            )
    if checker.errors:
        raise JudgmentImportError(checker.errors)
    if dry_run:
        missing = sum(1 for a in existing_annotators.values() if a is None)
        return ImportResult(
            lines=count, created=len(new_lines), unchanged=unchanged, annotators_created=missing
        )

    with transaction.atomic():
        annotators, annotators_created = _annotators_resolve(
            {line.annotator_key for line in new_lines}, create=True
        )
        now = timezone.now()
        judgments = []
        for line in new_lines:
            annotator = annotators[line.annotator_key]
            assert annotator is not None
            judgments.append(
                Judgment(
                    pair=line.pair,
                    annotator=annotator,
                    aspect=line.aspect,
                    trial=line.trial,
                    choice=line.choice,
                    presented_order=line.presented_order,
                    score_a=line.score_a,
                    score_b=line.score_b,
                    rationale=line.rationale,
                    duration_s=line.duration_s,
                    rejected_at=now if line.rejection_reason is not None else None,
                    rejection_reason=line.rejection_reason or "",
                )
            )
        Judgment.objects.bulk_create(judgments, batch_size=IMPORT_BATCH)
    return ImportResult(
        lines=count, created=len(judgments), unchanged=unchanged, annotators_created=annotators_created
    )
