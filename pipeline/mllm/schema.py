"""The shape of a judge's answer: pydantic models and the JSON Schema sent as ``response_format``.

Wire format (pair mode; group mode has ``"ranking": [["A"], ["B", "C"], ["D"]]`` instead of
``"preferred"``)::

    {"aspects": {
        "prompt_following": {"rationale": "...", "scores": {"A": 8, "B": 5}, "preferred": "A"},
        "aesthetic": {...}, ...}}

The rationale comes first so that a model writes its reasons before its verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.mllm.templates import Mode, ScoreScale

Choice = Literal["A", "B", "tie"]
CHOICES: tuple[str, ...] = ("A", "B", "tie")


@dataclass(frozen=True, slots=True)
class AnswerSpec:
    """What a valid answer to one call must contain: mode, image labels, aspect keys and scale."""

    mode: Mode
    labels: tuple[str, ...]
    aspect_keys: tuple[str, ...]
    scale: ScoreScale = ScoreScale()

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of a valid answer (strict-mode compatible: every object closed, all required)."""
        score = {"type": "integer", "minimum": self.scale.min, "maximum": self.scale.max}
        scores = _closed_object({label: score for label in self.labels})
        rationale = {"type": "string", "description": "One to three sentences."}
        if self.mode == "pair":
            verdict: dict[str, Any] = {"preferred": {"type": "string", "enum": list(CHOICES)}}
        else:
            tier = {"type": "array", "items": {"type": "string", "enum": list(self.labels)}}
            verdict = {
                "ranking": {
                    "type": "array",
                    "items": tier,
                    "description": "Tiers of image labels, best first; images in one tier are tied.",
                }
            }
        aspect = _closed_object({"rationale": rationale, "scores": scores, **verdict})
        return _closed_object({"aspects": _closed_object({key: aspect for key in self.aspect_keys})})

    def response_format(self) -> dict[str, Any]:
        """The ``response_format`` argument asking an OpenAI-compatible server for this schema."""
        name = f"vp_{self.mode}_judgment"
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "strict": True, "schema": self.json_schema()},
        }


def _closed_object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


class _Strict(BaseModel):
    # Strict: repairs happen explicitly in parsing.py (and are recorded), never silently here.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class PairAspectAnswer(_Strict):
    """One aspect of a pair-mode answer, as the judge writes it."""

    rationale: str
    scores: dict[str, int]
    preferred: Choice


class GroupAspectAnswer(_Strict):
    """One aspect of a group-mode answer, as the judge writes it."""

    rationale: str
    scores: dict[str, int]
    ranking: list[list[str]] = Field(min_length=1)


class AspectJudgment(_Strict):
    """A validated judgment on one aspect, in the labels of the call (A, B, … in presentation order).

    ``ranking`` holds tiers best first (pair mode: derived from ``preferred``). ``scores_agree`` is False
    when the explicit choice/ranking contradicts the scores; the explicit verdict is kept (see
    :func:`pipeline.mllm.parsing.parse_answer`).
    """

    aspect: str
    scores: dict[str, int]
    preferred: Choice | None
    ranking: tuple[tuple[str, ...], ...]
    rationale: str
    scores_agree: bool


class ParsedAnswer(_Strict):
    """A judge's validated answer for one call, with the repairs that were needed to read it."""

    mode: Mode
    labels: tuple[str, ...]
    aspects: dict[str, AspectJudgment]
    repairs: tuple[str, ...] = ()


def tiers_from_scores(scores: dict[str, int], labels: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Rank labels by score, best first; equal scores share a tier."""
    by_score: dict[int, list[str]] = {}
    for label in labels:
        by_score.setdefault(scores[label], []).append(label)
    return tuple(tuple(by_score[s]) for s in sorted(by_score, reverse=True))
