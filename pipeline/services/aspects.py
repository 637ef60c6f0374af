"""The default aspects as Aspect rows, from their one definition in pipeline.mllm.aspects."""

from __future__ import annotations

from annotate.models import Aspect
from pipeline.mllm.aspects import DEFAULT_ASPECTS


def aspects_ensure_defaults() -> list[Aspect]:
    """Create or refresh the four VisionPrefer aspects; returns them in display order."""
    for order, spec in enumerate(DEFAULT_ASPECTS, start=1):
        Aspect.objects.update_or_create(
            key=spec.key,
            defaults={
                "name": spec.name,
                "question": spec.question,
                "guideline": spec.guideline,
                "order": order,
            },
        )
    return list(Aspect.objects.filter(key__in=[s.key for s in DEFAULT_ASPECTS]).order_by("order"))
