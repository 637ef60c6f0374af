"""Prompts: one row per distinct text; taking them out of a campaign or moving them to another."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from annotate.models import Prompt


def prompt_text_key(text: str) -> str:
    """The deduplication key of a prompt: sha256 of its whitespace-normalised text."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


def prompt_get_or_create(*, text: str, source: str = "upload", **fields: Any) -> tuple[Prompt, bool]:
    """Return the prompt with this text, creating it if new; duplicates by normalised text are merged."""
    clean = " ".join(text.split())
    if not clean:
        raise ValueError("A prompt cannot be empty.")
    key = prompt_text_key(clean)
    found = Prompt.objects.filter(text_sha256=key).first()
    if found is not None:
        return found, False
    try:
        with transaction.atomic():
            return Prompt.objects.create(text=clean, text_sha256=key, source=source, **fields), True
    except IntegrityError:
        return Prompt.objects.get(text_sha256=key), False


@dataclass(frozen=True)
class PromptRemoval:
    """What removing (or moving) prompts did: which left the campaign, and which stayed because people or
    AI judges already labelled their pairs there."""

    removed: list[int]
    kept_labelled: list[int]
    pairs_deleted: int


def campaign_prompts_remove(*, campaign: Any, prompt_ids: list[int]) -> PromptRemoval:
    """Take prompts out of a campaign with their unlabelled pairs; prompts with labelled pairs stay.

    Labels are never deleted by this: a prompt whose pairs in this campaign have a judgment or a submitted
    assignment is kept and reported. The prompt rows themselves stay (other campaigns may use them).
    """
    from annotate.models import Assignment, Judgment, Pair

    with transaction.atomic():
        in_campaign = list(campaign.prompts.filter(pk__in=prompt_ids).values_list("pk", flat=True))
        pairs = Pair.objects.filter(campaign=campaign, prompt_id__in=in_campaign)
        labelled = set(
            Judgment.objects.filter(pair__in=pairs).values_list("pair__prompt_id", flat=True).distinct()
        ) | set(
            Assignment.objects.filter(pair__in=pairs, status=Assignment.Status.SUBMITTED)
            .values_list("pair__prompt_id", flat=True)
            .distinct()
        )
        removable = [pk for pk in in_campaign if pk not in labelled]
        unlabelled_pairs = Pair.objects.filter(campaign=campaign, prompt_id__in=removable)
        n_pairs = unlabelled_pairs.count()
        unlabelled_pairs.delete()  # their open reservations go with them
        campaign.prompts.remove(*removable)
    return PromptRemoval(removed=removable, kept_labelled=sorted(labelled), pairs_deleted=n_pairs)


def campaign_prompts_move(*, source: Any, target: Any, prompt_ids: list[int]) -> PromptRemoval:
    """Move prompts to another campaign (their images come along; pairs are built there by Generate images)."""
    if source.pk == target.pk:
        raise ValueError("Choose another campaign to move the prompts to.")
    with transaction.atomic():
        removal = campaign_prompts_remove(campaign=source, prompt_ids=prompt_ids)
        target.prompts.add(*removal.removed)
    return removal
