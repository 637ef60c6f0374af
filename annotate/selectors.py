"""Read-side queries for campaigns and their progress."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from annotate.models import Campaign


def campaign_list_with_counts() -> QuerySet[Campaign]:
    """Campaigns with their pair and gold-pair counts, for the admin dashboard."""
    return Campaign.objects.annotate(
        n_pairs=Count("pairs", distinct=True),
        n_gold=Count("pairs", filter=Q(pairs__is_gold=True), distinct=True),
    ).order_by("-created_at")


def campaign_summary(*, campaign: Campaign) -> dict[str, Any]:
    """Headline numbers for one campaign: pairs, judgments by annotator kind, images."""
    from annotate.models import Image, Judgment

    judgments = Judgment.objects.filter(pair__campaign=campaign)
    return {
        "pairs": campaign.pairs.count(),
        "gold_pairs": campaign.pairs.filter(is_gold=True).count(),
        "images": Image.objects.filter(prompt__campaigns=campaign).count(),
        "prompts": campaign.prompts.count(),
        "human_judgments": judgments.filter(annotator__kind="human").count(),
        "ai_judgments": judgments.filter(annotator__kind="ai").count(),
    }
