"""Prompts: one row per distinct text."""

from __future__ import annotations

import hashlib
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
