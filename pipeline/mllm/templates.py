"""Versioned prompt templates for MLLM judges, VisionPrefer-style.

A template turns (text-to-image prompt, images, aspects, score scale) into Chat Completions messages.
The template version is stored with every judgment, so **any change to the wording below must ship as a
new version** (add a template, keep the old one) — otherwise stored labels would point at a prompt that
no longer exists.

Two modes:

* ``pair`` (``vp-pair-v1``): two images, labelled A and B; per aspect the judge scores both images and
  names the preferred one (``"A"``, ``"B"`` or ``"tie"``).
* ``group`` (``vp-group-v1``): all k images of one prompt at once, labelled A, B, C, …; per aspect the
  judge scores every image and ranks them in tiers (ties allowed). See :mod:`pipeline.mllm.group` for the
  conversion to k(k-1)/2 pairwise judgments.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.mllm.aspects import DEFAULT_ASPECTS, Aspect

Mode = Literal["pair", "group"]

#: Image labels in presentation order. 26 images per call is far beyond any model's useful context.
LABELS: tuple[str, ...] = tuple(string.ascii_uppercase)


@dataclass(frozen=True, slots=True)
class ScoreScale:
    """The integer scale a judge scores each image on (inclusive bounds)."""

    min: int = 1
    max: int = 10

    def __post_init__(self) -> None:
        if not (isinstance(self.min, int) and isinstance(self.max, int)) or self.min >= self.max:
            raise ValueError(f"ScoreScale needs integers with min < max, got {self.min}..{self.max}")

    def bands(self, levels: int) -> list[tuple[int, int] | None]:
        """Spread ``levels`` rubric levels (best first) over the scale as (high, low) score bands.

        Each score goes to the nearest level, so the best and worst levels always keep the ends of the
        scale; on a scale shorter than the rubric, middle levels get no band (None).
        """
        out: list[list[int]] = [[] for _ in range(levels)]
        for value in range(self.max, self.min - 1, -1):
            level = 0 if levels == 1 else round((self.max - value) * (levels - 1) / (self.max - self.min))
            out[level].append(value)
        return [(values[0], values[-1]) if values else None for values in out]


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """A versioned prompt: fixed wording plus the mode it asks for."""

    version: str
    mode: Mode
    system: str
    task: str  # format fields: n, labels, prompt
    steps: str  # format fields: n, min, max, choice_labels
    structured_footer: str
    plain_footer: str  # format field: schema


_SYSTEM_V1 = (
    "You are an expert annotator of AI-generated images. You compare images that text-to-image models "
    "generated for the same prompt, and judge them on several aspects, each on its own: an image can be "
    "beautiful and still ignore the prompt. Base every judgment only on what is visible in the images and "
    "on the prompt. Do not let the order in which the images are shown, their size, or guesses about "
    "which model made them sway you. You answer in JSON."
)

VP_PAIR_V1 = PromptTemplate(
    version="vp-pair-v1",
    mode="pair",
    system=_SYSTEM_V1,
    task=(
        "A text-to-image model was given this prompt:\n"
        '"""\n{prompt}\n"""\n\n'
        "Below are the {n} images it produced, labelled {labels} in the order shown."
    ),
    steps=(
        "For each aspect, independently of the others:\n"
        "1. Write a rationale of one to three sentences naming the visible details that decide it.\n"
        "2. Score each image with a whole number from {min} (worst) to {max} (best), following the "
        "aspect's rubric.\n"
        '3. Give the preferred image: "A" or "B", or "tie" only if neither is better on this aspect. '
        "The preferred image is normally the one with the higher score."
    ),
    structured_footer="Reply with the JSON object only.",
    plain_footer=(
        "Reply with a single JSON object and no other text. It must follow this JSON Schema:\n"
        "```json\n{schema}\n```"
    ),
)

VP_GROUP_V1 = PromptTemplate(
    version="vp-group-v1",
    mode="group",
    system=_SYSTEM_V1,
    task=VP_PAIR_V1.task,
    steps=(
        "For each aspect, independently of the others:\n"
        "1. Write a rationale of one to three sentences naming the visible details that decide it.\n"
        "2. Score each image with a whole number from {min} (worst) to {max} (best), following the "
        "aspect's rubric.\n"
        "3. Rank all {n} images from best to worst as a list of tiers: each tier is a list of image "
        "labels, best tier first. Put images in the same tier only if they are equally good on this "
        "aspect. Every image appears exactly once. The ranking normally agrees with the scores."
    ),
    structured_footer=VP_PAIR_V1.structured_footer,
    plain_footer=VP_PAIR_V1.plain_footer,
)

TEMPLATES: dict[str, PromptTemplate] = {t.version: t for t in (VP_PAIR_V1, VP_GROUP_V1)}
DEFAULT_TEMPLATE_VERSION = {"pair": VP_PAIR_V1.version, "group": VP_GROUP_V1.version}


def get_template(version: str) -> PromptTemplate:
    """Return the template with this version, or raise KeyError naming the known versions."""
    try:
        return TEMPLATES[version]
    except KeyError:
        raise KeyError(f"unknown prompt template {version!r}; known: {sorted(TEMPLATES)}") from None


def _join_labels(labels: Sequence[str]) -> str:
    if len(labels) == 2:
        return f"{labels[0]} and {labels[1]}"
    return ", ".join(labels[:-1]) + f" and {labels[-1]}"


def _aspect_block(number: int, aspect: Aspect, scale: ScoreScale) -> str:
    lines = [f"{number}. {aspect.name} (key: {aspect.key})", f"   Question: {aspect.question}"]
    if aspect.definition:
        lines.append(f"   Definition: {aspect.definition}")
    if aspect.rubric:
        lines.append(f"   Rubric ({scale.min} = worst, {scale.max} = best):")
        for band, level in zip(scale.bands(len(aspect.rubric)), aspect.rubric, strict=True):
            if band is None:
                continue
            high, low = band
            span = str(high) if high == low else f"{low}-{high}"
            lines.append(f"   - {span}: {level}")
    return "\n".join(lines)


def _instructions(
    template: PromptTemplate,
    *,
    labels: Sequence[str],
    aspects: Sequence[Aspect],
    scale: ScoreScale,
    schema: dict[str, Any] | None,
) -> str:
    blocks = "\n\n".join(_aspect_block(i, a, scale) for i, a in enumerate(aspects, start=1))
    steps = template.steps.format(n=len(labels), min=scale.min, max=scale.max)
    if schema is None:
        footer = template.structured_footer
    else:
        # Compact separators keep the schema cheap in tokens; models read it fine.
        footer = template.plain_footer.format(schema=json.dumps(schema, separators=(",", ":")))
    return f"Judge the images on these aspects:\n\n{blocks}\n\n{steps}\n\n{footer}"


def render_messages(
    template_version: str,
    *,
    prompt: str,
    image_urls: Sequence[str],
    aspects: Sequence[Aspect] = DEFAULT_ASPECTS,
    scale: ScoreScale = ScoreScale(),
    json_schema_in_prompt: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Render Chat Completions messages: a system message and a user message with text and images.

    ``image_urls`` are (data) URLs in presentation order; they get labels A, B, …. Pass
    ``json_schema_in_prompt`` when the server cannot enforce a response format: the schema is then
    spelled out in the prompt instead.
    """
    template = get_template(template_version)
    labels = labels_for(len(image_urls), template.mode)
    content: list[dict[str, Any]] = [
        {
            "type": "text",
            "text": template.task.format(prompt=prompt, n=len(labels), labels=_join_labels(labels)),
        }
    ]
    for label, url in zip(labels, image_urls, strict=True):
        content.append({"type": "text", "text": f"Image {label}:"})
        content.append({"type": "image_url", "image_url": {"url": url}})
    content.append(
        {
            "type": "text",
            "text": _instructions(
                template, labels=labels, aspects=aspects, scale=scale, schema=json_schema_in_prompt
            ),
        }
    )
    return [{"role": "system", "content": template.system}, {"role": "user", "content": content}]


def messages_as_text(messages: Sequence[dict[str, Any]], image_names: Sequence[str] | None = None) -> str:
    """Render messages as plain text for admins: the exact prompt, images shown as placeholders."""
    out: list[str] = []
    names = iter(image_names or ())
    for message in messages:
        out.append(f"[{message['role']}]")
        content = message["content"]
        if isinstance(content, str):
            out.append(content)
            continue
        for part in content:
            if part["type"] == "text":
                out.append(part["text"])
            else:
                out.append(f"<image: {next(names, 'image')}>")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def labels_for(n_images: int, mode: Mode) -> tuple[str, ...]:
    """Labels for ``n_images`` images in presentation order; pair mode needs exactly two."""
    if mode == "pair" and n_images != 2:
        raise ValueError(f"pair mode needs exactly 2 images, got {n_images}")
    if not 2 <= n_images <= len(LABELS):
        raise ValueError(f"need 2..{len(LABELS)} images, got {n_images}")
    return LABELS[:n_images]
