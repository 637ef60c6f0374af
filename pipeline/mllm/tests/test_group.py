"""Group mode: a tiered ranking of k images becomes exactly k(k-1)/2 canonical pairwise judgments."""

from __future__ import annotations

import json

import pytest

from pipeline.mllm import AnswerSpec, parse_answer, ranking_to_pairwise
from pipeline.mllm.group import answer_to_pairwise


def test_ranking_of_four_images_gives_the_six_right_pairwise_judgments_with_ties():
    # B best; A and D tied; C worst.
    pairs = ranking_to_pairwise([["B"], ["A", "D"], ["C"]], ["A", "B", "C", "D"], aspect="aesthetic")
    got = [(p.i, p.j, p.first, p.second, p.choice, p.winner) for p in pairs]
    assert got == [
        (0, 1, "A", "B", "B", "B"),
        (0, 2, "A", "C", "A", "A"),
        (0, 3, "A", "D", "tie", None),
        (1, 2, "B", "C", "A", "B"),
        (1, 3, "B", "D", "A", "B"),
        (2, 3, "C", "D", "B", "D"),
    ]
    assert {p.aspect for p in pairs} == {"aesthetic"}


def test_all_tied_and_strict_rankings():
    labels = ["A", "B", "C", "D"]
    assert {p.choice for p in ranking_to_pairwise([labels], labels)} == {"tie"}
    strict = ranking_to_pairwise([["D"], ["C"], ["B"], ["A"]], labels)
    assert len(strict) == 6 and {p.choice for p in strict} == {"B"}  # the later image always wins


@pytest.mark.parametrize("ranking", [[["A"], ["B"]], [["A", "B"], ["B", "C"]], [["A"], ["B"], ["C"], ["X"]]])
def test_bad_rankings_raise(ranking):
    with pytest.raises(ValueError):
        ranking_to_pairwise(ranking, ["A", "B", "C"])


def test_answer_to_pairwise_maps_labels_to_image_ids_and_keeps_scores():
    spec = AnswerSpec(mode="group", labels=("A", "B", "C", "D"), aspect_keys=("fidelity",))
    doc = {
        "aspects": {
            "fidelity": {
                "rationale": "C is melted.",
                "scores": {"A": 7, "B": 9, "C": 2, "D": 7},
                "ranking": [["B"], ["A", "D"], ["C"]],
            }
        }
    }
    answer = parse_answer(json.dumps(doc), spec)
    pairs = answer_to_pairwise(answer, ["img-10", "img-11", "img-12", "img-13"])
    assert len(pairs) == 6
    a_d = next(p for p in pairs if (p.first, p.second) == ("img-10", "img-13"))
    assert (a_d.choice, a_d.winner, a_d.first_score, a_d.second_score) == ("tie", None, 7, 7)
    b_c = next(p for p in pairs if (p.first, p.second) == ("img-11", "img-12"))
    assert (b_c.choice, b_c.winner, b_c.rationale) == ("A", "img-11", "C is melted.")


def test_pair_answer_in_swapped_order_maps_back_to_the_same_winner():
    spec = AnswerSpec(mode="pair", labels=("A", "B"), aspect_keys=("aesthetic",))
    doc = {"aspects": {"aesthetic": {"rationale": "x", "scores": {"A": 3, "B": 8}, "preferred": "B"}}}
    answer = parse_answer(json.dumps(doc), spec)
    # Shown as (img-2, img-1): B is img-1.
    (pair,) = answer_to_pairwise(answer, ["img-2", "img-1"])
    assert (pair.first, pair.second, pair.choice, pair.winner) == ("img-2", "img-1", "B", "img-1")
