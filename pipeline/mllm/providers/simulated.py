"""A **simulated** judge for demos and benchmarks: it answers from recorded image defects, not pixels.

The demo generator records, per image, the defects it planted (``wrong_count``, ``blur``, …). This judge
scores each image by subtracting a penalty per defect on the aspects that defect hurts, then flips its
verdict with a configurable probability to imitate a fallible annotator. With ``first_bias`` it can also
be position-biased: with that probability per aspect it prefers whichever image it was shown first,
whatever the defects (``first_bias=1``: always the first-shown image), which is how tests reproduce the
position bias real judges show. Its model name and every rationale say "simulated", so its labels can
never pass for a model's.

Request metadata: ``request.metadata["image_meta"] = {image_id: {"defects": ["blur", ...]}, ...}``.
Images without an entry have no defects; unknown defect names are ignored.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Mapping, Sequence

from pipeline.mllm.calls import AttemptRecord, CallRequest, CallResult
from pipeline.mllm.parsing import AnswerParseError, parse_answer
from pipeline.mllm.providers.base import CallTracker
from pipeline.mllm.schema import tiers_from_scores

METADATA_KEY = "image_meta"

#: Share of the score range a defect takes off each aspect it hurts.
DEFECT_PENALTIES: dict[str, dict[str, float]] = {
    "wrong_count": {"prompt_following": 0.5},
    "wrong_colour": {"prompt_following": 0.4},
    "blur": {"fidelity": 0.4, "aesthetic": 0.15},
    "noise": {"fidelity": 0.4, "aesthetic": 0.15},
    "artefacts": {"fidelity": 0.5, "aesthetic": 0.15},
    "cropped": {"aesthetic": 0.4},
    "unsafe": {"harmlessness": 0.8},
}
DEFECT_PENALTIES["wrong_color"] = DEFECT_PENALTIES["wrong_colour"]
DEFECT_PENALTIES["artifacts"] = DEFECT_PENALTIES["artefacts"]


class SimulatedJudge:
    """Deterministic defect-based judge with verdict noise; zero tokens, optional fake latency.

    With probability ``flip_probability`` per aspect, the scores of two images are swapped (in pair mode:
    the verdict flips, a tie stays a tie). The random draws depend only on ``seed``, the request key and
    the aspect, so results do not depend on concurrency or order. With probability ``first_bias`` per
    aspect (drawn from its own stream, so the flips are those of an unbiased judge with the same seed) it
    ranks the first-shown image alone on top instead.
    """

    provider = "simulated"
    needs_pixels = False

    def __init__(
        self,
        *,
        seed: int = 0,
        flip_probability: float = 0.1,
        latency_s: float = 0.0,
        first_bias: float = 0.0,
    ) -> None:
        if not 0.0 <= flip_probability <= 1.0:
            raise ValueError(f"flip_probability must be in [0, 1], got {flip_probability}")
        if not 0.0 <= first_bias <= 1.0:
            raise ValueError(f"first_bias must be in [0, 1], got {first_bias}")
        self.seed = seed
        self.flip_probability = flip_probability
        self.first_bias = first_bias
        self.latency_s = latency_s
        bias = f", first_bias={first_bias:g}" if first_bias else ""
        self.model = f"simulated-defects-v1 (simulated, flip={flip_probability:g}{bias}, seed={seed})"

    def estimate_tokens(self, request: CallRequest) -> int:
        """A simulated call uses no tokens."""
        return 0

    async def aclose(self) -> None:
        """Nothing to release."""

    async def judge(self, request: CallRequest) -> CallResult:
        """Answer from the recorded defects, through the same parser as a real judge."""
        tracker = CallTracker(request=request, model=self.model, provider=self.provider)
        started = time.perf_counter()
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        text = json.dumps(self.answer_document(request))
        tracker.record(
            AttemptRecord("ok", time.perf_counter() - started, finish_reason="stop"), raw_text=text
        )
        try:
            answer = parse_answer(text, request.answer_spec(), finish_reason="stop")
        except AnswerParseError as exc:  # only if this module has a bug; reported like any bad answer
            return tracker.parse_failure(exc)
        return tracker.finish("ok", answer=answer)

    def answer_document(self, request: CallRequest) -> dict[str, object]:
        """The JSON answer this judge gives for a request (before parsing)."""
        spec = request.answer_spec()
        meta: Mapping[str, Mapping[str, object]] = request.metadata.get(METADATA_KEY, {})
        defects = {image.image_id: _defects(meta.get(image.image_id, {})) for image in request.images}
        aspects: dict[str, object] = {}
        span = spec.scale.max - spec.scale.min
        for key in spec.aspect_keys:
            rng = random.Random(f"{self.seed}|{request.key}|{key}")
            scores: dict[str, int] = {}
            reasons: dict[str, list[str]] = {}
            for label, image in zip(spec.labels, request.images, strict=True):
                hurting = [d for d in defects[image.image_id] if key in DEFECT_PENALTIES.get(d, {})]
                penalty = sum(DEFECT_PENALTIES[d][key] for d in hurting)
                scores[label] = max(spec.scale.min, spec.scale.max - round(penalty * span))
                reasons[label] = hurting
            flipped = rng.random() < self.flip_probability
            if flipped:
                a, b = rng.sample(list(spec.labels), 2)
                scores[a], scores[b] = scores[b], scores[a]
            biased = (
                self.first_bias > 0
                and random.Random(f"{self.seed}|{request.key}|{key}|first").random() < self.first_bias
            )
            if biased:
                # The first-shown image alone on top; the scores say the same as the verdict.
                first = spec.labels[0]
                for label in spec.labels[1:]:
                    scores[label] = max(spec.scale.min, min(scores[label], spec.scale.max - 1))
                scores[first] = spec.scale.max
            tiers = tiers_from_scores(scores, spec.labels)
            rationale = _rationale(reasons, flipped)
            if biased:
                rationale += " Simulated position bias: the image shown first was preferred."
            entry: dict[str, object] = {"rationale": rationale, "scores": scores}
            if spec.mode == "pair":
                entry["preferred"] = "tie" if len(tiers) == 1 else tiers[0][0]
            else:
                entry["ranking"] = [list(tier) for tier in tiers]
            aspects[key] = entry
        return {"aspects": aspects}


def _defects(meta: Mapping[str, object]) -> list[str]:
    raw = meta.get("defects", [])
    return [str(d) for d in raw] if isinstance(raw, Sequence) and not isinstance(raw, str) else []


def _rationale(reasons: dict[str, list[str]], flipped: bool) -> str:
    found = "; ".join(f"image {label}: {', '.join(d)}" for label, d in reasons.items() if d)
    text = (
        f"Simulated judgment from recorded defects ({found})."
        if found
        else ("Simulated judgment: no recorded defect affects this aspect.")
    )
    return text + (" Simulated noise flipped this verdict." if flipped else "")
