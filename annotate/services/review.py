"""Review: an admin rejects a judgment with a reason. Rejected judgments are kept and marked, never deleted;
reports (scoring.selectors) and exports (scoring.services.judgments_io) leave them out by default.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from annotate.models import Judgment

REASON_MAX_CHARS = 300


def judgment_reject(*, judgment: Judgment, by: Any, reason: str) -> Judgment:
    """Mark a judgment rejected with a reason (a second rejection updates the reason, keeps the first time)."""
    reason = " ".join(reason.split())
    if not reason:
        raise ValueError("Say why the judgment is rejected.")
    if len(reason) > REASON_MAX_CHARS:
        raise ValueError(f"Keep the reason under {REASON_MAX_CHARS} characters.")
    judgment.rejected_at = judgment.rejected_at or timezone.now()
    judgment.rejected_by = by if getattr(by, "is_authenticated", False) else None
    judgment.rejection_reason = reason
    judgment.save(update_fields=["rejected_at", "rejected_by", "rejection_reason"])
    return judgment


def judgment_unreject(*, judgment: Judgment) -> Judgment:
    """Take a rejection back: the judgment counts again."""
    judgment.rejected_at = None
    judgment.rejected_by = None
    judgment.rejection_reason = ""
    judgment.save(update_fields=["rejected_at", "rejected_by", "rejection_reason"])
    return judgment
