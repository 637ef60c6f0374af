"""Building comparison pairs from a campaign's images."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

from annotate.models import Campaign, Image, Pair


def pairs_build(
    *,
    campaign: Campaign,
    strategy: str = "all",
    sample_per_prompt: int | None = None,
    seed: int = 0,
) -> int:
    """Create pairs for every prompt of the campaign; returns how many are new. Re-running adds none.

    strategy: "all" (every two images of a prompt), "cross_generator" (only images from different
    generators) or "sample" (a random `sample_per_prompt` of all pairs, seeded).
    """
    if strategy not in {"all", "cross_generator", "sample"}:
        raise ValueError(f"Unknown pair strategy {strategy!r}: use all, cross_generator or sample.")
    if strategy == "sample" and not sample_per_prompt:
        raise ValueError("The sample strategy needs sample_per_prompt >= 1.")
    rng = random.Random(seed)
    by_prompt: dict[int, list[tuple[int, int]]] = defaultdict(list)
    images = Image.objects.filter(prompt__campaigns=campaign).values_list("id", "prompt_id", "generator_id")
    for image_id, prompt_id, generator_id in images.order_by("prompt_id", "id"):
        by_prompt[prompt_id].append((image_id, generator_id))
    new_pairs = []
    for prompt_id, members in by_prompt.items():
        combos = [
            (a, b)
            for (a, ga), (b, gb) in itertools.combinations(members, 2)
            if strategy != "cross_generator" or ga != gb
        ]
        if strategy == "sample":
            combos = rng.sample(combos, min(sample_per_prompt or 0, len(combos)))
        for a, b in combos:
            lo, hi = (a, b) if a < b else (b, a)
            new_pairs.append(Pair(campaign=campaign, prompt_id=prompt_id, image_a_id=lo, image_b_id=hi))
    before = Pair.objects.filter(campaign=campaign).count()
    Pair.objects.bulk_create(new_pairs, ignore_conflicts=True, batch_size=2000)
    return Pair.objects.filter(campaign=campaign).count() - before


def gold_answers_validate(*, campaign: Campaign, answers: dict) -> dict[str, str]:
    """Check a gold pair's expected answers: known aspects of the campaign, each A, B or tie."""
    if not isinstance(answers, dict) or not answers:
        raise ValueError('Give the expected answer per aspect, e.g. {"prompt_following": "A"}.')
    keys = set(campaign.aspects.values_list("key", flat=True))
    unknown = sorted(set(answers) - keys)
    if unknown:
        raise ValueError(f"Not aspects of this campaign: {', '.join(unknown)}.")
    bad = sorted(k for k, v in answers.items() if v not in ("A", "B", "tie"))
    if bad:
        raise ValueError(f"Answers must be A, B or tie (check {', '.join(bad)}).")
    return {str(k): str(v) for k, v in answers.items()}


def pair_gold_set(*, pair: Pair, answers: dict | None) -> Pair:
    """Mark a pair as gold with its expected answers (canonical A/B/tie), or unmark it with None."""
    if answers is None:
        pair.is_gold, pair.gold_answers = False, {}
    else:
        pair.is_gold, pair.gold_answers = True, gold_answers_validate(campaign=pair.campaign, answers=answers)
    pair.save(update_fields=["is_gold", "gold_answers"])
    return pair
