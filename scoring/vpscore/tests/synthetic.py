"""Synthetic preference data whose answer is a visible property of the image (for the learning tests)."""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

from scoring.vpscore.data import Preference

PROMPTS = [
    f"{n} {c} {s}"
    for n in ("one", "two", "three", "four")
    for c in ("green", "pink", "yellow", "purple")
    for s in ("circles", "stars", "triangles")
]


def picture(rng: random.Random, *, red_square: bool, blue_disc: bool, size: int = 32) -> Image.Image:
    """Grey noise with clutter; a red square and / or a blue disc when asked (each at a random place)."""
    shade = rng.randint(90, 170)
    image = Image.new("RGB", (size, size), (shade, shade, shade))
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x, y = rng.randint(0, size - 6), rng.randint(0, size - 6)
        grey = rng.randint(40, 220)
        draw.rectangle([x, y, x + 4, y + 4], fill=(grey, grey, grey))
    if red_square:
        x, y = rng.randint(0, size - 12), rng.randint(0, size - 12)
        draw.rectangle([x, y, x + 11, y + 11], fill=(220, 20, 20))
    if blue_disc:
        x, y = rng.randint(0, size - 12), rng.randint(0, size - 12)
        draw.ellipse([x, y, x + 11, y + 11], fill=(20, 40, 230))
    return image


def preference_set(
    n_pairs: int, *, seed: int, aspects: tuple[str, ...] = ("fidelity",)
) -> tuple[list[Preference], dict[str, Image.Image], dict[str, tuple[bool, bool]]]:
    """Pairs whose `fidelity` winner has the red square and whose `aesthetic` winner has the blue disc.

    The two properties are drawn independently per image, so a head that learned the wrong one is at
    chance on the other's labels.
    """
    rng = random.Random(seed)
    images: dict[str, Image.Image] = {}
    props: dict[str, tuple[bool, bool]] = {}
    rows: list[Preference] = []
    for i in range(n_pairs):
        prompt = rng.choice(PROMPTS)
        keys = []
        while True:
            flags = [(rng.random() < 0.5, rng.random() < 0.5) for _ in range(2)]
            if all(flags[0][k] != flags[1][k] for k in range(2)):
                break
        for j, (red, blue) in enumerate(flags):
            key = f"img-{seed}-{i}-{j}"
            images[key] = picture(rng, red_square=red, blue_disc=blue)
            props[key] = (red, blue)
            keys.append(key)
        for aspect in aspects:
            k = 0 if aspect == "fidelity" else 1
            rows.append(Preference(prompt, keys[0], keys[1], aspect, 1.0 if flags[0][k] else 0.0))
    return rows, images, props
