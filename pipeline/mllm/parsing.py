"""Read a judge's raw answer into a :class:`~pipeline.mllm.schema.ParsedAnswer`, or say exactly why not.

Repairs are made only where the meaning is unambiguous, and every repair is recorded in
``ParsedAnswer.repairs``:

* ``json_in_fence`` / ``json_in_prose`` — the one answer object inside a ```json fence or inside prose;
* ``aspects_unwrapped`` — aspect objects at the top level instead of under ``"aspects"``;
* ``score_string`` / ``score_float`` — ``"7"`` or ``7.0`` read as 7 (``"7.5"`` and ``7.5`` are rejected);
* ``label_normalised`` — ``"a"``, ``" Image A "``, ``"TIE"`` read as ``"A"`` / ``"tie"``;
* ``ranking_flat`` — a ranking given as a list of labels (no ties) instead of a list of tiers;
* ``extra_aspect_ignored`` — an aspect nobody asked for.

Everything else raises :class:`AnswerParseError` with a :class:`ParseFailureReason`.

Contradiction between the explicit verdict and the scores (``preferred: "A"`` with ``B`` scored higher, or a
ranking out of score order) is **not** a failure: the explicit verdict wins, because it is the question the
judge was asked, while scores are coarse and often tied or inconsistent across a scale. The judgment is kept
with ``scores_agree=False`` so reports can count how often a judge contradicts itself.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from pydantic import ValidationError

from pipeline.mllm.schema import (
    CHOICES,
    AnswerSpec,
    AspectJudgment,
    Choice,
    GroupAspectAnswer,
    PairAspectAnswer,
    ParsedAnswer,
    tiers_from_scores,
)


class ParseFailureReason(enum.StrEnum):
    """Why an answer could not be read; stored on the call and shown on the job's failures page."""

    EMPTY = "empty"
    TRUNCATED = "truncated"
    REFUSAL = "refusal"
    CONTENT_FILTER = "content_filter"
    INVALID_JSON = "invalid_json"
    AMBIGUOUS_JSON = "ambiguous_json"
    SCHEMA_MISMATCH = "schema_mismatch"
    MISSING_ASPECT = "missing_aspect"
    MISSING_SCORE = "missing_score"
    INVALID_SCORE = "invalid_score"
    SCORE_OUT_OF_RANGE = "score_out_of_range"
    INVALID_CHOICE = "invalid_choice"
    INVALID_RANKING = "invalid_ranking"


class AnswerParseError(ValueError):
    """An answer that cannot be used: ``reason`` (a code), ``message`` (for people) and ``raw`` text."""

    def __init__(self, reason: ParseFailureReason, message: str, raw: str | None) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message
        self.raw = raw


_Answer = TypeVar("_Answer", PairAspectAnswer, GroupAspectAnswer)
_Fail = Callable[[ParseFailureReason, str], AnswerParseError]

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)
_REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i apologi[sz]e|i can'?t|i cannot|i can not|i'?m unable|i am unable|"
    r"i won'?t|i will not|i'?m not able|i am not able|as an ai\b)",
)
_LABEL = re.compile(r"^(?:image[\s_-]*)?([a-z])$")


def parse_answer(
    text: str | None,
    spec: AnswerSpec,
    *,
    finish_reason: str | None = None,
    refusal: str | None = None,
) -> ParsedAnswer:
    """Parse a judge's raw text against ``spec``; raise AnswerParseError with a reason if unusable.

    ``finish_reason`` and ``refusal`` are the Chat Completions fields of the same choice. A truncated
    answer (``finish_reason == "length"``) is always rejected, even if its JSON happens to close.
    """
    raw = text
    if refusal:
        raise AnswerParseError(
            ParseFailureReason.REFUSAL, f"the model refused: {refusal[:200]}", raw or refusal
        )
    if finish_reason == "length":
        raise AnswerParseError(
            ParseFailureReason.TRUNCATED, "the answer hit the token limit (finish_reason=length)", raw
        )
    if finish_reason == "content_filter":
        raise AnswerParseError(
            ParseFailureReason.CONTENT_FILTER, "the server's content filter cut the answer", raw
        )
    if text is None or not text.strip():
        raise AnswerParseError(ParseFailureReason.EMPTY, "the answer is empty", raw)

    repairs: list[str] = []
    document = _extract_json(text, spec, repairs)
    aspects_obj = _aspects_object(document, spec, text, repairs)

    missing = [key for key in spec.aspect_keys if key not in aspects_obj]
    if missing:
        raise AnswerParseError(
            ParseFailureReason.MISSING_ASPECT, f"missing aspect(s): {', '.join(missing)}", raw
        )
    if any(key not in spec.aspect_keys for key in aspects_obj):
        repairs.append("extra_aspect_ignored")

    judgments = {key: _aspect(key, aspects_obj[key], spec, raw, repairs) for key in spec.aspect_keys}
    return ParsedAnswer(
        mode=spec.mode, labels=spec.labels, aspects=judgments, repairs=tuple(dict.fromkeys(repairs))
    )


def _extract_json(text: str, spec: AnswerSpec, repairs: list[str]) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    fenced = [obj for obj in (_loads(body) for body in _FENCE.findall(text)) if _looks_like_answer(obj, spec)]
    if fenced:
        return _single(fenced, "json_in_fence", text, repairs)
    # Try a JSON object at every "{"; the inner objects of a broken outer one never look like answers.
    decoder = json.JSONDecoder()
    found: list[Any] = []
    start = text.find("{")
    while start != -1:
        try:
            obj, end = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if _looks_like_answer(obj, spec):
            found.append(obj)
            start = text.find("{", end)
        else:
            start = text.find("{", start + 1)
    if found:
        return _single(found, "json_in_prose", text, repairs)
    lowered = text.lower().replace("\u2019", "'")
    if _REFUSAL.search(lowered):
        raise AnswerParseError(ParseFailureReason.REFUSAL, f"the model refused: {text.strip()[:200]}", text)
    raise AnswerParseError(ParseFailureReason.INVALID_JSON, "no valid JSON answer object in the text", text)


def _loads(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _looks_like_answer(obj: Any, spec: AnswerSpec) -> bool:
    return isinstance(obj, dict) and ("aspects" in obj or any(key in obj for key in spec.aspect_keys))


def _single(candidates: list[Any], repair: str, raw: str, repairs: list[str]) -> Any:
    distinct = {json.dumps(c, sort_keys=True) for c in candidates}
    if len(distinct) > 1:
        raise AnswerParseError(
            ParseFailureReason.AMBIGUOUS_JSON, f"{len(distinct)} different JSON answers in the text", raw
        )
    repairs.append(repair)
    return candidates[0]


def _aspects_object(document: Any, spec: AnswerSpec, raw: str, repairs: list[str]) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise AnswerParseError(
            ParseFailureReason.SCHEMA_MISMATCH, f"expected a JSON object, got {type(document).__name__}", raw
        )
    if "aspects" in document:
        aspects = document["aspects"]
        if not isinstance(aspects, dict):
            raise AnswerParseError(ParseFailureReason.SCHEMA_MISMATCH, '"aspects" is not an object', raw)
        return aspects
    if any(key in document for key in spec.aspect_keys):
        repairs.append("aspects_unwrapped")
        return document
    raise AnswerParseError(ParseFailureReason.MISSING_ASPECT, 'no "aspects" object in the answer', raw)


def _aspect(key: str, obj: Any, spec: AnswerSpec, raw: str | None, repairs: list[str]) -> AspectJudgment:
    def fail(reason: ParseFailureReason, message: str) -> AnswerParseError:
        return AnswerParseError(reason, f"aspect {key!r}: {message}", raw)

    if not isinstance(obj, dict):
        raise fail(ParseFailureReason.SCHEMA_MISMATCH, "is not an object")
    scores = _scores(obj.get("scores"), spec, fail, repairs)
    preferred: Choice | None = None
    ranking: tuple[tuple[str, ...], ...]
    if spec.mode == "pair":
        preferred = _choice(obj.get("preferred"), fail, repairs)
        fields = {"rationale": obj.get("rationale"), "scores": scores, "preferred": preferred}
        rationale = _validate(PairAspectAnswer, fields, fail).rationale
        a, b = spec.labels
        ranking = ((a, b),) if preferred == "tie" else ((a,), (b,)) if preferred == a else ((b,), (a,))
    else:
        tiers = _ranking(obj.get("ranking"), spec.labels, fail, repairs)
        fields = {"rationale": obj.get("rationale"), "scores": scores, "ranking": tiers}
        rationale = _validate(GroupAspectAnswer, fields, fail).rationale
        ranking = tuple(tuple(tier) for tier in tiers)
    return AspectJudgment(
        aspect=key,
        scores=scores,
        preferred=preferred,
        ranking=ranking,
        rationale=rationale.strip(),
        scores_agree=tiers_from_scores(scores, spec.labels) == ranking,
    )


def _validate(model: type[_Answer], fields: dict[str, Any], fail: _Fail) -> _Answer:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise fail(ParseFailureReason.SCHEMA_MISMATCH, problems) from None


def _label(value: Any, labels: Sequence[str], repairs: list[str]) -> str | None:
    if not isinstance(value, str):
        return None
    if value in labels:
        return value
    match = _LABEL.match(value.strip().lower())
    if match and match.group(1).upper() in labels:
        repairs.append("label_normalised")
        return match.group(1).upper()
    return None


def _choice(value: Any, fail: _Fail, repairs: list[str]) -> Choice:
    if value in CHOICES:
        return cast(Choice, value)
    if isinstance(value, str) and value.strip().lower() == "tie":
        repairs.append("label_normalised")
        return "tie"
    label = _label(value, ("A", "B"), repairs)
    if label is None:
        raise fail(ParseFailureReason.INVALID_CHOICE, f'preferred must be "A", "B" or "tie", got {value!r}')
    return cast(Choice, label)


def _scores(value: Any, spec: AnswerSpec, fail: _Fail, repairs: list[str]) -> dict[str, int]:
    if not isinstance(value, dict):
        raise fail(ParseFailureReason.MISSING_SCORE, "no scores object")
    scores: dict[str, int] = {}
    for raw_label, raw_score in value.items():
        label = _label(raw_label, spec.labels, repairs)
        if label is None or label in scores:
            raise fail(ParseFailureReason.SCHEMA_MISMATCH, f"unexpected image label {raw_label!r} in scores")
        scores[label] = _score(raw_label, raw_score, fail, repairs)
    missing = [label for label in spec.labels if label not in scores]
    if missing:
        raise fail(ParseFailureReason.MISSING_SCORE, f"no score for image(s) {', '.join(missing)}")
    low, high = spec.scale.min, spec.scale.max
    bad = {label: s for label, s in scores.items() if not low <= s <= high}
    if bad:
        shown = ", ".join(f"{label}={s}" for label, s in bad.items())
        raise fail(ParseFailureReason.SCORE_OUT_OF_RANGE, f"score(s) {shown} outside {low}..{high}")
    return {label: scores[label] for label in spec.labels}


def _score(label: Any, value: Any, fail: _Fail, repairs: list[str]) -> int:
    if isinstance(value, bool):
        raise fail(ParseFailureReason.INVALID_SCORE, f"score for {label!r} is a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        repairs.append("score_float")
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(\.0*)?\s*", value):
        repairs.append("score_string")
        return int(float(value))
    raise fail(ParseFailureReason.INVALID_SCORE, f"score for {label!r} is not a whole number: {value!r}")


def _ranking(value: Any, labels: Sequence[str], fail: _Fail, repairs: list[str]) -> list[list[str]]:
    if not isinstance(value, list) or not value:
        raise fail(ParseFailureReason.INVALID_RANKING, "ranking must be a non-empty list of tiers")
    tiers: list[list[str]] = []
    for entry in value:
        if isinstance(entry, str):
            repairs.append("ranking_flat")
            entry = [entry]
        if not isinstance(entry, list):
            raise fail(ParseFailureReason.INVALID_RANKING, f"ranking tier {entry!r} is not a list of labels")
        tier = []
        for item in entry:
            label = _label(item, labels, repairs)
            if label is None:
                raise fail(ParseFailureReason.INVALID_RANKING, f"unknown image label {item!r} in ranking")
            tier.append(label)
        if tier:
            # Within a tier order carries no meaning; presentation order makes rankings comparable.
            tiers.append(sorted(tier, key=labels.index))
    seen = [label for tier in tiers for label in tier]
    if sorted(seen) != sorted(labels):
        duplicated = sorted({label for label in seen if seen.count(label) > 1})
        absent = [label for label in labels if label not in seen]
        detail = "; ".join(
            part
            for part in (
                f"repeated: {', '.join(duplicated)}" if duplicated else "",
                f"missing: {', '.join(absent)}" if absent else "",
            )
            if part
        )
        raise fail(
            ParseFailureReason.INVALID_RANKING, f"ranking must list every image exactly once ({detail})"
        )
    return tiers
