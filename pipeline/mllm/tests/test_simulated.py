"""The simulated judge: answers from recorded defects, deterministic per seed, noisy on demand, labelled."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.mllm import CallRequest, RequestImage, iter_batch
from pipeline.mllm.providers import SimulatedJudge


def request(key: str, defects: dict[str, list[str]], *, k: int = 2) -> CallRequest:
    ids = [f"img{i}" for i in range(k)]
    return CallRequest(
        key=key,
        prompt="three blue balls",
        images=tuple(RequestImage(i) for i in ids),
        template_version="vp-pair-v1" if k == 2 else "vp-group-v1",
        metadata={"image_meta": {i: {"defects": defects.get(i, [])} for i in ids}},
    )


def judge(j: SimulatedJudge, r: CallRequest):
    return asyncio.run(j.judge(r))


def test_verdicts_follow_the_recorded_defects_without_noise():
    result = judge(SimulatedJudge(flip_probability=0.0), request("1", {"img0": ["blur"], "img1": ["unsafe"]}))
    assert result.ok
    aspects = result.answer.aspects
    assert aspects["fidelity"].preferred == "B"  # A is blurred
    assert aspects["aesthetic"].preferred == "B"  # blur hurts aesthetic a little
    assert aspects["harmlessness"].preferred == "A"  # B is unsafe
    assert aspects["prompt_following"].preferred == "tie"
    assert aspects["fidelity"].scores == {"A": 6, "B": 10}


@pytest.mark.parametrize(
    ("defect", "aspect"),
    [
        ("wrong_count", "prompt_following"),
        ("wrong_colour", "prompt_following"),
        ("noise", "fidelity"),
        ("artefacts", "fidelity"),
        ("cropped", "aesthetic"),
        ("unsafe", "harmlessness"),
    ],
)
def test_each_defect_hurts_its_aspect(defect, aspect):
    result = judge(SimulatedJudge(flip_probability=0.0), request("1", {"img1": [defect]}))
    assert result.answer.aspects[aspect].preferred == "A"


def test_labelled_simulated_everywhere_with_zero_tokens():
    result = judge(SimulatedJudge(), request("1", {"img0": ["blur"]}))
    assert "simulated" in result.model and result.provider == "simulated"
    assert all("Simulated" in a.rationale for a in result.answer.aspects.values())
    assert (result.prompt_tokens, result.completion_tokens) == (0, 0)
    assert result.attempts == 1 and result.raw_text.startswith('{"aspects"')


def test_same_seed_same_answers_different_seed_differs():
    requests = [request(str(i), {"img0": ["blur", "cropped"]}) for i in range(60)]
    first = [judge(SimulatedJudge(seed=1, flip_probability=0.5), r).answer for r in requests]
    again = [judge(SimulatedJudge(seed=1, flip_probability=0.5), r).answer for r in requests]
    other = [judge(SimulatedJudge(seed=2, flip_probability=0.5), r).answer for r in requests]
    assert first == again
    assert first != other


def test_flip_probability_is_the_rate_of_flipped_verdicts():
    j = SimulatedJudge(seed=3, flip_probability=0.2)
    verdicts = [
        judge(j, request(str(i), {"img0": ["artefacts"]})).answer.aspects["fidelity"].preferred
        for i in range(500)
    ]
    flipped = verdicts.count("A") / len(verdicts)
    assert 0.15 <= flipped <= 0.25
    assert "tie" not in verdicts


def test_full_noise_flips_every_verdict_but_keeps_ties():
    result = judge(SimulatedJudge(flip_probability=1.0), request("1", {"img0": ["blur"]}))
    assert result.answer.aspects["fidelity"].preferred == "A"
    assert result.answer.aspects["harmlessness"].preferred == "tie"
    assert "flipped" in result.answer.aspects["fidelity"].rationale


def test_group_mode_ranks_by_defects():
    r = request(
        "g", {"img0": ["artefacts", "noise"], "img1": ["blur"], "img3": ["blur", "noise", "artefacts"]}, k=4
    )
    result = judge(SimulatedJudge(flip_probability=0.0), r)
    assert result.answer.aspects["fidelity"].ranking == (("C",), ("B",), ("A",), ("D",))
    assert len(result.pairwise()) == 4 * 6


def test_runs_through_the_executor_in_any_order_with_the_same_answers():
    requests = [request(str(i), {"img0": ["noise"]}) for i in range(40)]
    j = SimulatedJudge(seed=5, flip_probability=0.3)
    one = {r.key: r.answer for r in iter_batch(requests, j, concurrency=1)}
    many = {r.key: r.answer for r in iter_batch(reversed(requests), j, concurrency=16)}
    assert one == many


def test_invalid_flip_probability():
    with pytest.raises(ValueError):
        SimulatedJudge(flip_probability=1.5)


def test_first_bias_one_always_prefers_the_image_shown_first():
    j = SimulatedJudge(flip_probability=0.0, first_bias=1.0)
    # The first image is the blurred one: an unbiased judge prefers B on fidelity, this one A.
    result = judge(j, request("1", {"img0": ["blur"]}))
    fidelity = result.answer.aspects["fidelity"]
    assert fidelity.preferred == "A" and fidelity.scores["A"] > fidelity.scores["B"]
    assert "position bias" in fidelity.rationale and "first_bias=1" in result.model
    assert {a.preferred for a in result.answer.aspects.values()} == {"A"}
    # Group mode: the first-shown image alone on top of the ranking.
    group = judge(j, request("2", {"img0": ["unsafe"]}, k=4)).answer.aspects["harmlessness"]
    assert group.ranking[0] == ("A",)


def test_first_bias_is_the_rate_of_first_shown_preferences_and_keeps_the_unbiased_flips():
    requests = [request(str(i), {"img1": ["artefacts"]}) for i in range(400)]
    biased = [judge(SimulatedJudge(seed=4, first_bias=0.3), r).answer for r in requests]
    unbiased = [judge(SimulatedJudge(seed=4), r).answer for r in requests]
    changed = [
        b.aspects["fidelity"].preferred != u.aspects["fidelity"].preferred
        for b, u in zip(biased, unbiased, strict=True)
    ]
    # Unbiased it prefers A (B has artefacts) unless a flip happened; the bias can only add "A" answers,
    # and every answer it changed became "A".
    assert all(b.aspects["fidelity"].preferred == "A" for b, c in zip(biased, changed, strict=True) if c)
    share_first = sum(b.aspects["fidelity"].preferred == "A" for b in biased) / len(biased)
    flips = sum(u.aspects["fidelity"].preferred == "B" for u in unbiased) / len(unbiased)
    # P(first) = bias + (1 - bias) * P(first | unbiased) = 0.3 + 0.7 * (1 - flips).
    assert share_first == pytest.approx(0.3 + 0.7 * (1 - flips), abs=0.06)


def test_first_bias_out_of_range_is_refused():
    with pytest.raises(ValueError, match="first_bias"):
        SimulatedJudge(first_bias=1.5)
