"""The AI judge page's Test button: one real call on a sample pair, answered inside the request.

It runs synchronously so the admin sees the answer at once, but it can never hold a web worker for long:
one attempt, no parse retry, and a timeout of at most TEST_TIMEOUT_S seconds whatever the judge's own
settings say. The call is recorded as an AICall without a job (it was paid for), but it makes no
judgments. Local transformers models are refused: loading one belongs on the GPU worker, not in the web
process.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone

from annotate.models import Pair
from pipeline.mllm import ScoreScale, iter_batch
from pipeline.models import AICall, AIJudgeConfig
from pipeline.services.annotation_calls import _attempt_entry, annotation_request
from pipeline.services.judges import campaign_mllm_aspects, judge_call_cost, judge_from_config

TEST_TIMEOUT_S = 15.0


@dataclass
class JudgeTestResult:
    """What the Test button shows: the prompt sent, the raw answer, and the parsed judgment or the error."""

    pair: Pair
    ok: bool
    rendered_prompt: str = ""
    raw_answer: str = ""
    judgments: list[dict[str, Any]] = field(default_factory=list)
    error_reason: str = ""
    error_message: str = ""
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal("0")
    call: AICall | None = None


def judge_test_sample_pair(*, campaign: Any, pair_id: int | None = None) -> Pair:
    """The pair a test sends: the given one of the campaign, else a random regular pair (ValueError if none)."""
    pairs = Pair.objects.filter(campaign=campaign).select_related("prompt", "image_a", "image_b", "campaign")
    if pair_id is not None:
        found = pairs.filter(pk=pair_id).first()
        if found is None:
            raise ValueError(f"Campaign {campaign.name!r} has no pair {pair_id}.")
        return found
    found = pairs.filter(is_gold=False).order_by("?").first() or pairs.order_by("?").first()
    if found is None:
        raise ValueError(f"Campaign {campaign.name!r} has no pairs yet: generate or import images first.")
    return found


def _capped(config: AIJudgeConfig) -> AIJudgeConfig:
    """A copy of the judge (never saved) with one attempt and a short timeout."""
    capped = copy.copy(config)
    capped.timeout_s = min(float(config.timeout_s or TEST_TIMEOUT_S), TEST_TIMEOUT_S)
    capped.max_attempts = 1
    capped.options = {**(config.options or {}), "max_parse_attempts": 1}
    return capped


def judge_test(*, config: AIJudgeConfig, pair: Pair) -> JudgeTestResult:
    """Send one call for `pair` with the judge's saved settings (capped) and report what happened."""
    if config.provider == AIJudgeConfig.Provider.LOCAL:
        return JudgeTestResult(
            pair=pair,
            ok=False,
            error_reason="local_model",
            error_message="A local transformers model is loaded on the GPU worker, not in the web server: "
            "test it with an annotation job on a sample of one pair.",
        )
    campaign = pair.campaign
    capped = _capped(config)
    request = annotation_request(
        key="test",
        unit_prompt=pair.prompt.text,
        image_ids=(pair.image_a_id, pair.image_b_id),
        images={pair.image_a_id: pair.image_a, pair.image_b_id: pair.image_b},
        judge_config=capped,
        aspects=campaign_mllm_aspects(campaign),
        scale=ScoreScale(campaign.score_min, campaign.score_max),
    )
    try:
        judge = judge_from_config(capped)
    except (RuntimeError, ValueError) as exc:
        return JudgeTestResult(
            pair=pair,
            ok=False,
            rendered_prompt=request.prompt_text(),
            error_reason="configuration",
            error_message=str(exc),
        )
    (result,) = list(iter_batch([request], judge, concurrency=1))
    cost = judge_call_cost(config, result.prompt_tokens, result.completion_tokens)
    rendered = result.request.prompt_text(structured=result.structured)
    call = AICall.objects.create(
        job=None,
        judge=config,
        pair=pair,
        prompt=pair.prompt,
        image_ids=[pair.image_a_id, pair.image_b_id],
        pair_ids=[pair.pk],
        trial=1,
        status=AICall.Status.SUCCEEDED if result.ok else AICall.Status.FAILED,
        attempts=result.attempts,
        latency_s=result.latency_s,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cost_usd=cost,
        template_version=result.template_version,
        rendered_prompt=rendered,
        raw_response=result.raw_text or "",
        finish_reason=result.finish_reason or "",
        error_reason=result.error.reason if result.error else "",
        error_message=result.error.message[:5000] if result.error else "",
        attempt_log=[_attempt_entry(a) for a in result.attempt_log],
        finished_at=timezone.now(),
    )
    judgments = []
    for verdict in result.pairwise():
        first = int(verdict.first)
        a_first = first == pair.image_a_id
        choice = "tie" if verdict.winner is None else ("A" if int(verdict.winner) == pair.image_a_id else "B")
        judgments.append(
            {
                "aspect": verdict.aspect,
                "choice": choice,
                "score_a": verdict.first_score if a_first else verdict.second_score,
                "score_b": verdict.second_score if a_first else verdict.first_score,
                "rationale": verdict.rationale,
            }
        )
    return JudgeTestResult(
        pair=pair,
        ok=result.ok,
        rendered_prompt=rendered,
        raw_answer=result.raw_text or "",
        judgments=judgments,
        error_reason=result.error.reason if result.error else "",
        error_message=result.error.message if result.error else "",
        latency_s=result.latency_s,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cost_usd=cost,
        call=call,
    )
