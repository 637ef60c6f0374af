"""The offline "demo" generator: compositional scenes from a small prompt grammar, with recorded defects.

No diffusion weights can be downloaded on a demo machine, yet the four aspects must show visible
differences between images. This module draws simple scenes ("three red circles above a blue square")
and can inject controlled defects, each of which maps onto an aspect a judge should notice:

=============  ==========================================  ===================
defect         what changes                                aspect it hurts
=============  ==========================================  ===================
wrong_count    one object group gets one object more/less  prompt_following
wrong_colour   one object group is drawn in another colour prompt_following
cropped        the composition is shifted off the canvas   aesthetic
blur           gaussian blur                               fidelity
noise          gaussian pixel noise                        fidelity
artefacts      blocky JPEG-like patches and torn stripes   fidelity
unsafe         abstract dark-red splatter + warning sign   harmlessness
=============  ==========================================  ===================

Grammar (case-insensitive, a trailing full stop is allowed)::

    prompt     := group [relation group] [background]
    group      := count colour shape
    count      := a | an | one | two | three | four | five | 1..5
    colour     := red | orange | yellow | green | blue | purple | pink | white | black | grey (gray)
    shape      := circle | square | triangle | star | ring | diamond | hexagon | cross  (singular or plural)
    relation   := above | below | [to the] left of | [to the] right of | next to | beside
    background := on (a|an) colour background

Rendering is deterministic: the same prompt, seed, defects and size give identical pixels. Each part of
the randomness (layout, every defect) draws from its own stream seeded by (prompt, seed, part), so adding
a defect does not move the objects of the clean image.

This module is imported by the web app: it must not import torch, diffusers or Django.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# Bump when a change alters the pixels rendered for an existing (prompt, seed, defects): stored images
# record it so that a re-render can be compared like with like.
DEMO_VERSION = 1

COUNT_WORDS: dict[int, str] = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
_COUNT_TOKENS: dict[str, int] = {
    **{word: n for n, word in COUNT_WORDS.items()},
    **{str(n): n for n in COUNT_WORDS},
    "a": 1,
    "an": 1,
}

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (218, 48, 52),
    "orange": (244, 131, 30),
    "yellow": (246, 204, 38),
    "green": (52, 168, 83),
    "blue": (38, 108, 222),
    "purple": (132, 68, 194),
    "pink": (240, 112, 172),
    "white": (246, 246, 244),
    "black": (28, 28, 32),
    "grey": (128, 130, 134),
}
_COLOUR_ALIASES = {"gray": "grey"}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring", "diamond", "hexagon", "cross")
_PLURALS = {shape: (shape + "es" if shape.endswith("s") else shape + "s") for shape in SHAPES}
_SHAPE_TOKENS = {**{s: s for s in SHAPES}, **{p: s for s, p in _PLURALS.items()}}

RELATIONS: tuple[str, ...] = ("above", "below", "to the left of", "to the right of", "next to")
# Token sequences accepted for each relation; longest first so "to the left of" wins over shorter forms.
_RELATION_FORMS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("to", "the", "left", "of"), "to the left of"),
    (("to", "the", "right", "of"), "to the right of"),
    (("left", "of"), "to the left of"),
    (("right", "of"), "to the right of"),
    (("next", "to"), "next to"),
    (("beside",), "next to"),
    (("above",), "above"),
    (("below",), "below"),
)

DEFECTS: tuple[str, ...] = ("wrong_count", "wrong_colour", "blur", "noise", "artefacts", "cropped", "unsafe")

# Soft default backgrounds (top colour, bottom colour) used when the prompt names none.
_DEFAULT_BACKGROUNDS: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...] = (
    ((232, 238, 246), (196, 210, 230)),
    ((246, 239, 226), (226, 210, 188)),
    ((230, 244, 236), (196, 222, 208)),
    ((240, 234, 246), (212, 202, 228)),
    ((236, 236, 232), (206, 206, 200)),
)


@dataclass(frozen=True)
class ObjectGroup:
    """`count` objects of one colour and shape, e.g. three red circles."""

    count: int
    colour: str
    shape: str

    def to_text(self) -> str:
        """The group in canonical prompt words ("an orange ring", "three red circles")."""
        if self.count == 1:
            article = "an" if self.colour[0] in "aeiou" else "a"
            return f"{article} {self.colour} {self.shape}"
        return f"{COUNT_WORDS[self.count]} {self.colour} {_PLURALS[self.shape]}"


@dataclass(frozen=True)
class Scene:
    """A parsed prompt: one or two object groups, the relation of the first to the second, a background."""

    groups: tuple[ObjectGroup, ...]
    relation: str | None = None
    background: str | None = None

    def to_prompt(self) -> str:
        """The canonical prompt text; `parse_prompt(scene.to_prompt()) == scene`."""
        text = self.groups[0].to_text()
        if self.relation is not None:
            text += f" {self.relation} {self.groups[1].to_text()}"
        if self.background is not None:
            article = "an" if self.background[0] in "aeiou" else "a"
            text += f" on {article} {self.background} background"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, stored in image records."""
        return {
            "groups": [asdict(g) for g in self.groups],
            "relation": self.relation,
            "background": self.background,
        }


# --------------------------------------------------------------------------------------------- grammar


def random_prompt(rng: random.Random) -> str:
    """A random prompt in the grammar, in canonical form."""
    first_colour, second_colour = rng.sample(sorted(COLOURS), 2)
    groups = [ObjectGroup(rng.randint(1, 5), first_colour, rng.choice(SHAPES))]
    relation = None
    if rng.random() < 0.7:
        relation = rng.choice(RELATIONS)
        groups.append(ObjectGroup(rng.randint(1, 3), second_colour, rng.choice(SHAPES)))
    background = None
    if rng.random() < 0.4:
        # Never the colour of an object: the objects would vanish into it.
        used = {g.colour for g in groups}
        background = rng.choice([c for c in sorted(COLOURS) if c not in used])
    return Scene(tuple(groups), relation, background).to_prompt()


class _Tokens:
    """A cursor over prompt words that raises errors naming the word it could not use."""

    def __init__(self, text: str) -> None:
        self.text = text
        cleaned = text.strip().lower().replace(",", " ")
        cleaned = cleaned.removesuffix(".")
        self.words = cleaned.split()
        self.pos = 0

    def peek(self, offset: int = 0) -> str | None:
        i = self.pos + offset
        return self.words[i] if i < len(self.words) else None

    def fail(self, expected: str) -> ValueError:
        word = self.peek()
        if word is None:
            where = f"it ends after {self.words[-1]!r}" if self.words else "it is empty"
            return ValueError(f"cannot parse demo prompt {self.text!r}: {where}; expected {expected}")
        return ValueError(
            f"cannot parse demo prompt {self.text!r}: unexpected word {word!r} "
            f"(word {self.pos + 1}); expected {expected}"
        )

    def take(self, table: Mapping[str, Any], expected: str) -> Any:
        word = self.peek()
        if word is None or word not in table:
            raise self.fail(expected)
        self.pos += 1
        return table[word]


_EXPECT_COUNT = "a count (a, an, one … five)"
_EXPECT_COLOUR = "a colour (" + ", ".join(COLOURS) + ")"
_EXPECT_SHAPE = "a shape (" + ", ".join(SHAPES) + ")"
_COLOUR_TOKENS = {**{c: c for c in COLOURS}, **_COLOUR_ALIASES}


def _parse_group(tokens: _Tokens) -> ObjectGroup:
    count = tokens.take(_COUNT_TOKENS, _EXPECT_COUNT)
    colour = tokens.take(_COLOUR_TOKENS, _EXPECT_COLOUR)
    shape = tokens.take(_SHAPE_TOKENS, _EXPECT_SHAPE)
    return ObjectGroup(count, colour, shape)


#: What the demo generator can draw, in one line (shown when prompts outside the grammar are skipped).
GRAMMAR_SUMMARY = (
    "the demo generator draws only one to five coloured shapes (" + ", ".join(SHAPES) + "), optionally in "
    "relation to a second group and on a coloured background, e.g. 'three red circles above a blue square "
    "on a grey background'"
)


def prompt_fits_grammar(text: str) -> bool:
    """True when the demo generator can draw this prompt (parse_prompt accepts it)."""
    try:
        parse_prompt(text)
    except ValueError:
        return False
    return True


def parse_prompt(text: str) -> Scene:
    """Parse a prompt of the demo grammar; raise ValueError naming the first word that does not fit."""
    tokens = _Tokens(text)
    groups = [_parse_group(tokens)]
    relation = None
    for form, canonical in _RELATION_FORMS:
        if tuple(tokens.words[tokens.pos : tokens.pos + len(form)]) == form:
            tokens.pos += len(form)
            relation = canonical
            groups.append(_parse_group(tokens))
            break
    background = None
    if tokens.peek() == "on":
        tokens.pos += 1
        tokens.take({"a": "a", "an": "an"}, "'a' or 'an' (as in 'on a grey background')")
        background = tokens.take(_COLOUR_TOKENS, _EXPECT_COLOUR)
        tokens.take({"background": "background"}, "the word 'background'")
    if tokens.peek() is not None:
        expected = "the end of the prompt"
        if relation is None:
            expected = "a relation (" + ", ".join(RELATIONS) + "), 'on a … background' or the end"
        elif background is None:
            expected = "'on a … background' or the end of the prompt"
        raise tokens.fail(expected)
    return Scene(tuple(groups), relation, background)


# --------------------------------------------------------------------------------------------- defects


def sample_defects(rng: random.Random, p: float | Mapping[str, float] = 0.2) -> list[str]:
    """Pick defects independently, each with probability `p` (a float, or a per-defect mapping)."""
    if isinstance(p, Mapping):
        unknown = set(p) - set(DEFECTS)
        if unknown:
            raise ValueError(f"unknown defects {sorted(unknown)}; known: {', '.join(DEFECTS)}")
        probabilities = {d: float(p.get(d, 0.0)) for d in DEFECTS}
    else:
        probabilities = dict.fromkeys(DEFECTS, float(p))
    # One draw per defect in a fixed order, so the stream stays aligned whatever the probabilities are.
    return [d for d in DEFECTS if rng.random() < probabilities[d]]


def _canonical_defects(defects: Sequence[str]) -> list[str]:
    if isinstance(defects, str):
        raise TypeError("defects must be a sequence of names, not a single string")
    unknown = [d for d in defects if d not in DEFECTS]
    if unknown:
        raise ValueError(f"unknown defects {unknown}; known: {', '.join(DEFECTS)}")
    # Applied in a fixed order whatever order they were given in, so the record names one image.
    return [d for d in DEFECTS if d in defects]


# --------------------------------------------------------------------------------------------- rendering

RGB = tuple[int, int, int]


@dataclass
class _Placed:
    """One object to draw, in supersampled pixel coordinates."""

    shape: str
    colour: RGB
    x: float
    y: float
    radius: float
    angle: float


def _stream(canonical_prompt: str, seed: int, part: str) -> random.Random:
    # random.Random seeds from a str through SHA-512, so streams are stable across processes and
    # independent of PYTHONHASHSEED.
    return random.Random(f"demo-v{DEMO_VERSION}|{part}|{seed}|{canonical_prompt}")


def _np_stream(rng: random.Random) -> np.random.Generator:
    return np.random.default_rng(rng.getrandbits(64))


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _background(scene: Scene, size: int, rng: random.Random) -> Image.Image:
    if scene.background is None:
        top, bottom = rng.choice(_DEFAULT_BACKGROUNDS)
    else:
        base = COLOURS[scene.background]
        top, bottom = _mix(base, (255, 255, 255), 0.18), _mix(base, (0, 0, 0), 0.22)
    angle = math.radians(90 + rng.uniform(-35, 35))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    t = (xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    pixels = (
        np.asarray(top, np.float32)
        + (np.asarray(bottom, np.float32) - np.asarray(top, np.float32)) * t[..., None]
    )
    # Low-frequency blotches so that two seeds of the same prompt never share a flat backdrop.
    coarse = _np_stream(rng).normal(0.0, 1.0, size=(6, 6)).astype(np.float32)
    blotches = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
    pixels += np.asarray(blotches, np.float32)[..., None] * 5.0
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _regions(scene: Scene, rng: random.Random) -> list[tuple[float, float, float, float]]:
    """Unit-square boxes (x0, y0, x1, y1), one per group, that express the relation."""
    if scene.relation is None:
        return [(0.08, 0.08, 0.92, 0.92)]
    split = 0.5 + rng.uniform(-0.04, 0.04)
    first_top, first_left = (0.06, 0.06, 0.94, split - 0.02), (0.06, 0.06, split - 0.02, 0.94)
    second_bottom, second_right = (0.06, split + 0.02, 0.94, 0.94), (split + 0.02, 0.06, 0.94, 0.94)
    relation = scene.relation
    if relation == "next to":
        relation = rng.choice(("to the left of", "to the right of"))
    return {
        "above": [first_top, second_bottom],
        "below": [second_bottom, first_top],
        "to the left of": [first_left, second_right],
        "to the right of": [second_right, first_left],
    }[relation]


def _place_group(
    shape: str,
    colour: RGB,
    count: int,
    box: tuple[float, float, float, float],
    canvas: int,
    rng: random.Random,
) -> list[_Placed]:
    x0, y0, x1, y1 = (v * canvas for v in box)
    width, height = x1 - x0, y1 - y0
    # The grid that gives the largest cells; ties broken by chance so layouts vary between seeds.
    options = []
    for cols in range(1, count + 1):
        rows = math.ceil(count / cols)
        options.append((min(width / cols, height / rows), rng.random(), cols, rows))
    cell, _, cols, rows = max(options)
    cell_w, cell_h = width / cols, height / rows
    cells = rng.sample([(c, r) for r in range(rows) for c in range(cols)], count)
    placed = []
    for c, r in sorted(cells, key=lambda cr: (cr[1], cr[0])):
        radius = min(cell * 0.5 * rng.uniform(0.6, 0.76), canvas * 0.17)
        slack_x, slack_y = max(cell_w / 2 - radius, 0.0), max(cell_h / 2 - radius, 0.0)
        x = x0 + (c + 0.5) * cell_w + rng.uniform(-0.8, 0.8) * slack_x
        y = y0 + (r + 0.5) * cell_h + rng.uniform(-0.8, 0.8) * slack_y
        placed.append(_Placed(shape, colour, x, y, radius, rng.uniform(-14, 14)))
    return placed


def _polygon(
    sides_radii: Sequence[float], x: float, y: float, radius: float, angle_deg: float, start: float
) -> list[tuple[float, float]]:
    n = len(sides_radii)
    points = []
    for i, scale in enumerate(sides_radii):
        theta = math.radians(start + angle_deg + 360.0 * i / n)
        points.append((x + radius * scale * math.cos(theta), y + radius * scale * math.sin(theta)))
    return points


def _shape_points(obj: _Placed) -> list[tuple[float, float]] | None:
    """Polygon outline of a shape, or None for the round shapes drawn as ellipses."""
    x, y, r, a = obj.x, obj.y, obj.radius, obj.angle
    if obj.shape == "square":
        return _polygon([1.0] * 4, x, y, r * 1.0, a, 45)
    if obj.shape == "triangle":
        return _polygon([1.0] * 3, x, y + r * 0.15, r * 1.15, a * 0.5, -90)
    if obj.shape == "star":
        return _polygon([1.0, 0.45] * 5, x, y + r * 0.05, r * 1.12, a, -90)
    if obj.shape == "hexagon":
        return _polygon([1.0] * 6, x, y, r * 1.02, a, 0)
    if obj.shape == "diamond":
        c, s = math.cos(math.radians(a * 0.5)), math.sin(math.radians(a * 0.5))
        corners = [(0.0, -1.15), (0.72, 0.0), (0.0, 1.15), (-0.72, 0.0)]
        return [(x + r * (px * c - py * s), y + r * (px * s + py * c)) for px, py in corners]
    if obj.shape == "cross":
        arm = 0.36
        outline = [(-arm, -1), (arm, -1), (arm, -arm), (1, -arm), (1, arm), (arm, arm)]
        outline += [(arm, 1), (-arm, 1), (-arm, arm), (-1, arm), (-1, -arm), (-arm, -arm)]
        c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
        return [(x + r * 0.95 * (px * c - py * s), y + r * 0.95 * (px * s + py * c)) for px, py in outline]
    return None


def _edge_colour(colour: RGB) -> RGB:
    # Dark fills get a lighter rim, everything else a darker one, so white and black shapes stay
    # visible on any background.
    if sum(colour) < 150:
        return _mix(colour, (255, 255, 255), 0.35)
    return _mix(colour, (0, 0, 0), 0.35)


def _draw_shape(draw: ImageDraw.ImageDraw, obj: _Placed, fill: Any, edge: Any, edge_width: int) -> None:
    x, y, r = obj.x, obj.y, obj.radius
    if obj.shape in ("circle", "ring"):
        box = (x - r, y - r, x + r, y + r)
        if obj.shape == "circle":
            draw.ellipse(box, fill=fill, outline=edge, width=edge_width)
            return
        band = max(int(r * 0.38), 2)
        draw.ellipse(box, outline=fill, width=band)
        if edge is not None:
            inner = r - band
            draw.ellipse(box, outline=edge, width=edge_width)
            draw.ellipse((x - inner, y - inner, x + inner, y + inner), outline=edge, width=edge_width)
        return
    points = _shape_points(obj)
    assert points is not None
    draw.polygon(points, fill=fill, outline=edge, width=edge_width)


def _draw_objects(canvas: Image.Image, objects: Sequence[_Placed]) -> None:
    size = canvas.width
    # A soft drop shadow under every object makes the flat shapes read as objects on a surface.
    shadow = Image.new("L", canvas.size, 0)
    shadow_draw = ImageDraw.Draw(shadow)
    offset = size * 0.012
    for obj in objects:
        moved = _Placed(obj.shape, obj.colour, obj.x + offset, obj.y + offset * 1.5, obj.radius, obj.angle)
        _draw_shape(shadow_draw, moved, fill=90, edge=None, edge_width=0)
    shadow = shadow.filter(ImageFilter.GaussianBlur(size * 0.012))
    canvas.paste((0, 0, 0), (0, 0, canvas.width, canvas.height), shadow)
    draw = ImageDraw.Draw(canvas)
    for obj in objects:
        edge_width = max(int(obj.radius * 0.07), 1)
        _draw_shape(draw, obj, fill=obj.colour, edge=_edge_colour(obj.colour), edge_width=edge_width)


def _draw_unsafe(canvas: Image.Image, rng: random.Random) -> dict[str, Any]:
    """An abstract 'disturbing' mark: a dark red splatter with drips and a warning sign."""
    size = canvas.width
    draw = ImageDraw.Draw(canvas)
    cx, cy = rng.uniform(0.3, 0.7) * size, rng.uniform(0.3, 0.6) * size
    radius = rng.uniform(0.13, 0.18) * size
    blood = (112, 6, 14)
    draw.ellipse((cx - radius, cy - radius * 0.85, cx + radius, cy + radius * 0.85), fill=blood)
    for _ in range(rng.randint(14, 22)):
        theta = rng.uniform(0, 2 * math.pi)
        dist = radius * rng.uniform(0.7, 1.9)
        r = radius * rng.uniform(0.05, 0.28) * (1.3 - dist / (2 * radius))
        x, y = cx + dist * math.cos(theta), cy + dist * math.sin(theta)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=blood)
    for _ in range(rng.randint(3, 6)):
        x = cx + rng.uniform(-0.8, 0.8) * radius
        width = radius * rng.uniform(0.06, 0.14)
        length = radius * rng.uniform(0.9, 2.2)
        draw.rounded_rectangle((x - width, cy, x + width, cy + length), radius=width, fill=blood)
    # Warning sign: a yellow triangle with a black rim and an exclamation mark, drawn without a font.
    side = size * 0.2
    wx = rng.choice((0.2, 0.8)) * size
    wy = size * 0.8
    tri = [(wx, wy - side * 0.55), (wx + side * 0.6, wy + side * 0.45), (wx - side * 0.6, wy + side * 0.45)]
    draw.polygon(tri, fill=(250, 204, 21), outline=(20, 20, 20), width=max(int(side * 0.07), 1))
    bar = side * 0.06
    draw.rounded_rectangle(
        (wx - bar, wy - side * 0.25, wx + bar, wy + side * 0.17), radius=bar, fill=(20, 20, 20)
    )
    draw.ellipse((wx - bar * 1.2, wy + side * 0.24, wx + bar * 1.2, wy + side * 0.34), fill=(20, 20, 20))
    return {"splatter_centre": [round(cx / size, 3), round(cy / size, 3)], "radius": round(radius / size, 3)}


def _artefacts(image: Image.Image, rng: random.Random) -> tuple[Image.Image, dict[str, Any]]:
    """Blocky, colour-quantised patches (like a badly compressed JPEG) and horizontally torn stripes."""
    pixels = np.asarray(image, dtype=np.uint8).copy()
    size = pixels.shape[0]
    block = max(size // 32, 4)
    n_patches = rng.randint(3, 5)
    for _ in range(n_patches):
        bw, bh = rng.randint(3, 7) * block, rng.randint(2, 5) * block
        x0 = rng.randrange(0, max(size - bw, 1), block)
        y0 = rng.randrange(0, max(size - bh, 1), block)
        patch = pixels[y0 : y0 + bh, x0 : x0 + bw].astype(np.float32)
        h, w = patch.shape[:2]
        blocks = patch[: h - h % block, : w - w % block].reshape(h // block, block, w // block, block, 3)
        means = blocks.mean(axis=(1, 3), keepdims=True)
        quantised = np.round(means / 48.0) * 48.0
        pixels[y0 : y0 + h - h % block, x0 : x0 + w - w % block] = np.broadcast_to(
            np.clip(quantised, 0, 255), blocks.shape
        ).reshape(h - h % block, w - w % block, 3)
    n_stripes = rng.randint(2, 4)
    for _ in range(n_stripes):
        height = max(int(size * rng.uniform(0.015, 0.05)), 1)
        y0 = rng.randrange(0, size - height)
        shift = rng.choice((-1, 1)) * int(size * rng.uniform(0.08, 0.25))
        stripe = np.roll(pixels[y0 : y0 + height], shift, axis=1)
        # Swap colour channels in the torn band, the way a corrupted stream often looks.
        pixels[y0 : y0 + height] = stripe[..., [2, 0, 1]]
    return Image.fromarray(pixels, "RGB"), {"patches": n_patches, "stripes": n_stripes, "block": block}


def render_with_record(
    prompt: str, *, seed: int, defects: Sequence[str] = (), size: int = 256
) -> tuple[Image.Image, dict[str, Any]]:
    """Render `prompt` deterministically and return the image with a JSON-ready record of what was drawn."""
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    scene = parse_prompt(prompt)
    applied = _canonical_defects(defects)
    canonical = scene.to_prompt()
    record: dict[str, Any] = {
        "generator": "demo",
        "demo_version": DEMO_VERSION,
        "synthetic": True,
        "prompt": canonical,
        "seed": seed,
        "size": size,
        "scene": scene.to_dict(),
        "defects": applied,
    }
    layout_rng = _stream(canonical, seed, "layout")
    # Drawn at twice the size then downsampled: PIL draws aliased edges, this antialiases them.
    big = size * 2
    canvas = _background(scene, big, layout_rng)
    regions = _regions(scene, layout_rng)

    drawn_groups = list(scene.groups)
    if "wrong_count" in applied:
        rng = _stream(canonical, seed, "wrong_count")
        index = rng.randrange(len(drawn_groups))
        expected = drawn_groups[index].count
        if expected == 1:
            drawn = 2
        elif expected == 5:
            drawn = 4
        else:
            drawn = expected + rng.choice((-1, 1))
        drawn_groups[index] = ObjectGroup(drawn, drawn_groups[index].colour, drawn_groups[index].shape)
        record["wrong_count"] = {"group": index, "expected": expected, "drawn": drawn}
    if "wrong_colour" in applied:
        rng = _stream(canonical, seed, "wrong_colour")
        index = rng.randrange(len(drawn_groups))
        taken = {g.colour for g in scene.groups} | {scene.background}
        new_colour = rng.choice([c for c in COLOURS if c not in taken])
        old = drawn_groups[index]
        drawn_groups[index] = ObjectGroup(old.count, new_colour, old.shape)
        record["wrong_colour"] = {"group": index, "expected": old.colour, "drawn": new_colour}

    objects: list[_Placed] = []
    for group, box in zip(drawn_groups, regions, strict=True):
        # A per-group stream: changing one group's count leaves the other group where it was.
        group_rng = random.Random(layout_rng.getrandbits(64))
        objects += _place_group(group.shape, COLOURS[group.colour], group.count, box, big, group_rng)

    if "cropped" in applied:
        rng = _stream(canonical, seed, "cropped")
        angle = rng.choice((0, 45, 90, 135, 180, 225, 270, 315)) + rng.uniform(-15, 15)
        distance = rng.uniform(0.32, 0.42)
        dx, dy = distance * math.cos(math.radians(angle)), distance * math.sin(math.radians(angle))
        for obj in objects:
            obj.x += dx * big
            obj.y += dy * big
        record["cropped"] = {"shift": [round(dx, 3), round(dy, 3)]}

    _draw_objects(canvas, objects)
    if "unsafe" in applied:
        record["unsafe"] = _draw_unsafe(canvas, _stream(canonical, seed, "unsafe"))
    image = canvas.resize((size, size), Image.Resampling.LANCZOS)

    if "blur" in applied:
        radius = size * _stream(canonical, seed, "blur").uniform(0.012, 0.02)
        image = image.filter(ImageFilter.GaussianBlur(radius))
        record["blur"] = {"radius_px": round(radius, 2)}
    if "noise" in applied:
        rng = _stream(canonical, seed, "noise")
        sigma = rng.uniform(22.0, 34.0)
        noisy = np.asarray(image, np.float32) + _np_stream(rng).normal(0.0, sigma, (size, size, 3))
        image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
        record["noise"] = {"sigma": round(sigma, 2)}
    if "artefacts" in applied:
        image, record["artefacts"] = _artefacts(image, _stream(canonical, seed, "artefacts"))
    return image, record


def render(prompt: str, *, seed: int, defects: Sequence[str] = (), size: int = 256) -> Image.Image:
    """Render `prompt` deterministically: the same prompt, seed, defects and size give identical pixels."""
    return render_with_record(prompt, seed=seed, defects=defects, size=size)[0]
