"""Building comparison pairs from a campaign's images, and fidelity gold pairs from corrupted copies."""

from __future__ import annotations

import hashlib
import io
import itertools
import random
from collections import defaultdict

from django.db import transaction

from annotate.models import Campaign, Generator, Image, Pair
from annotate.services.images import image_ingest

CORRUPTED_GENERATOR = "corrupted-copies"
CORRUPTIONS = ("blur", "noise", "blocks")


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
    # Corrupted copies exist only for gold pairs; pairing them with other images would be noise.
    images = (
        Image.objects.filter(prompt__campaigns=campaign)
        .exclude(generator__name=CORRUPTED_GENERATOR)
        .values_list("id", "prompt_id", "generator_id")
    )
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


# What each corruption looks like to a judge, named like the demo generator's recorded defects.
CORRUPTION_DEFECTS = {"blur": "blur", "noise": "noise", "blocks": "artefacts"}


def image_corrupt(*, data: bytes, corruption: str, seed: int = 0) -> bytes:
    """A visibly damaged PNG copy of an image: gaussian blur, pixel noise, or 8x8 blocks."""
    import numpy as np
    from PIL import Image as PILImage
    from PIL import ImageFilter

    with PILImage.open(io.BytesIO(data)) as opened:
        picture = opened.convert("RGB")
    width, height = picture.size
    if corruption == "blur":
        damaged = picture.filter(ImageFilter.GaussianBlur(radius=max(2.0, max(width, height) / 40)))
    elif corruption == "noise":
        pixels = np.asarray(picture, dtype=np.float32)
        noise = np.random.default_rng(seed).normal(0.0, 40.0, pixels.shape)
        damaged = PILImage.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
    elif corruption == "blocks":
        small = picture.resize((max(1, width // 8), max(1, height // 8)), PILImage.Resampling.BOX)
        damaged = small.resize((width, height), PILImage.Resampling.NEAREST)
    else:
        raise ValueError(f"unknown corruption {corruption!r}; use {', '.join(CORRUPTIONS)}")
    buffer = io.BytesIO()
    damaged.save(buffer, format="PNG")
    return buffer.getvalue()


def fidelity_gold_pairs_create(
    *, campaign: Campaign, count: int, corruptions: tuple[str, ...] = CORRUPTIONS, seed: int = 0
) -> list[Pair]:
    """Make up to `count` fidelity gold pairs: a campaign image against a corrupted copy of itself.

    The copy is stored through image_ingest under the "corrupted-copies" generator with the same prompt;
    the gold answer names the original in canonical terms ("A" when it is image_a). Images, corruption
    choice and noise are seeded, so a re-run finds the same copies and pairs and creates nothing new.
    """
    if not campaign.aspects.filter(key="fidelity").exists():
        raise ValueError(f"campaign {campaign.name!r} has no fidelity aspect; gold pairs would not be asked")
    unknown = set(corruptions) - set(CORRUPTIONS)
    if unknown or not corruptions:
        raise ValueError(f"corruptions must be among {', '.join(CORRUPTIONS)}")
    generator, _ = Generator.objects.get_or_create(
        name=CORRUPTED_GENERATOR,
        defaults={
            "kind": Generator.Kind.IMPORTED,
            "description": "Deliberately damaged copies of campaign images, for fidelity gold pairs.",
        },
    )
    originals = list(
        Image.objects.filter(prompt__campaigns=campaign).exclude(generator=generator).order_by("id")
    )
    rng = random.Random(seed)
    chosen = sorted(rng.sample(originals, min(count, len(originals))), key=lambda image: image.pk)
    pairs = []
    for original in chosen:
        if original.prompt_id is None:  # excluded by the query; says so to the type checker
            continue
        # A damage the original already shows (a blurred demo image blurred again) would not make the copy
        # worse in the judge's terms: pick among the corruptions that add a new defect.
        had = set((original.params or {}).get("defects", []))
        fresh = [c for c in corruptions if CORRUPTION_DEFECTS[c] not in had] or list(corruptions)
        corruption = fresh[original.pk % len(fresh)]
        with original.file.open("rb") as handle:
            data = handle.read()
        damaged = image_corrupt(data=data, corruption=corruption, seed=seed + original.pk)
        if hashlib.sha256(damaged).hexdigest() == original.sha256:
            # Blur and blocks leave a flat image as it was; noise always changes it.
            corruption = "noise"
            damaged = image_corrupt(data=data, corruption=corruption, seed=seed + original.pk)
        copy, _ = image_ingest(
            data=damaged,
            generator=generator,
            prompt=original.prompt,
            params={
                "corruption": corruption,
                "source_image_id": original.pk,
                # The copy has the original's defects plus the one we added, in the demo generator's terms.
                "defects": sorted(
                    {*(original.params or {}).get("defects", []), CORRUPTION_DEFECTS[corruption]}
                ),
            },
            filename="corrupted.png",
        )
        if copy.pk == original.pk:  # cannot happen with noise, but a pair needs two images
            continue
        low, high = sorted((original, copy), key=lambda image: image.pk)
        with transaction.atomic():
            pair, _ = Pair.objects.get_or_create(
                campaign=campaign,
                image_a=low,
                image_b=high,
                defaults={
                    "prompt_id": original.prompt_id,
                    "is_gold": True,
                    "gold_answers": {"fidelity": "A" if low.pk == original.pk else "B"},
                },
            )
        pairs.append(pair)
    return pairs
