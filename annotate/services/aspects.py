"""The default aspects."""

from __future__ import annotations

from annotate.aspects import DEFAULT_ASPECTS
from annotate.models import Aspect


def aspects_ensure_defaults() -> list[Aspect]:
    """Create or refresh the four VisionPrefer aspects; returns them in display order."""
    for spec in DEFAULT_ASPECTS:
        Aspect.objects.update_or_create(
            key=spec["key"], defaults={k: v for k, v in spec.items() if k != "key"}
        )
    return list(Aspect.objects.filter(key__in=[s["key"] for s in DEFAULT_ASPECTS]).order_by("order"))
