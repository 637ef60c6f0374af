"""The answer parser: unambiguous repairs are made and recorded, everything else is rejected with a reason."""

from __future__ import annotations

import copy
import json

import pytest

from pipeline.mllm import AnswerParseError, AnswerSpec, ParseFailureReason, ScoreScale, parse_answer

R = ParseFailureReason
ASPECTS = ("prompt_following", "aesthetic", "fidelity", "harmlessness")
PAIR = AnswerSpec(mode="pair", labels=("A", "B"), aspect_keys=ASPECTS)
GROUP = AnswerSpec(mode="group", labels=("A", "B", "C", "D"), aspect_keys=ASPECTS)


def pair_doc() -> dict:
    return {
        "aspects": {
            key: {"rationale": f"Reason for {key}.", "scores": {"A": 8, "B": 5}, "preferred": "A"}
            for key in ASPECTS
        }
    }


def group_doc() -> dict:
    return {
        "aspects": {
            key: {
                "rationale": "Because.",
                "scores": {"A": 9, "B": 6, "C": 6, "D": 2},
                "ranking": [["A"], ["B", "C"], ["D"]],
            }
            for key in ASPECTS
        }
    }


def reject(text: str | None, spec: AnswerSpec = PAIR, **kwargs: str) -> AnswerParseError:
    with pytest.raises(AnswerParseError) as info:
        parse_answer(text, spec, **kwargs)
    assert info.value.raw == text or kwargs.get("refusal")
    return info.value


def test_valid_pair_answer_parses_without_repairs():
    answer = parse_answer(json.dumps(pair_doc()), PAIR, finish_reason="stop")
    assert answer.repairs == ()
    judgment = answer.aspects["fidelity"]
    assert judgment.scores == {"A": 8, "B": 5}
    assert judgment.preferred == "A"
    assert judgment.ranking == (("A",), ("B",))
    assert judgment.scores_agree
    assert judgment.rationale == "Reason for fidelity."


def test_json_in_code_fence_is_repaired():
    text = f"```json\n{json.dumps(pair_doc(), indent=2)}\n```"
    assert parse_answer(text, PAIR).repairs == ("json_in_fence",)
    # A fence without the language tag is just as unambiguous.
    assert parse_answer(f"```\n{json.dumps(pair_doc())}\n```", PAIR).repairs == ("json_in_fence",)


def test_json_inside_prose_is_repaired():
    text = f"Here is my evaluation:\n{json.dumps(pair_doc())}\nLet me know if you need more."
    answer = parse_answer(text, PAIR)
    assert answer.repairs == ("json_in_prose",)
    assert answer.aspects["aesthetic"].preferred == "A"


def test_two_different_json_answers_in_prose_are_ambiguous():
    other = pair_doc()
    other["aspects"]["aesthetic"]["preferred"] = "B"
    text = f"First try: {json.dumps(pair_doc())}\nActually: {json.dumps(other)}"
    assert reject(text).reason == R.AMBIGUOUS_JSON


def test_scores_as_numeric_strings_and_integral_floats_are_repaired():
    doc = pair_doc()
    doc["aspects"]["aesthetic"]["scores"] = {"A": "7", "B": " 3 "}
    doc["aspects"]["fidelity"]["scores"] = {"A": 6.0, "B": 4}
    answer = parse_answer(json.dumps(doc), PAIR)
    assert answer.aspects["aesthetic"].scores == {"A": 7, "B": 3}
    assert answer.aspects["fidelity"].scores == {"A": 6, "B": 4}
    assert set(answer.repairs) == {"score_string", "score_float"}


@pytest.mark.parametrize("score", ["7.5", 7.5, "seven", None, True, [7]])
def test_non_integer_scores_are_rejected(score):
    doc = pair_doc()
    doc["aspects"]["aesthetic"]["scores"]["B"] = score
    error = reject(json.dumps(doc))
    assert error.reason == R.INVALID_SCORE
    assert "aesthetic" in error.message


@pytest.mark.parametrize(
    ("written", "expected"),
    [("a", "A"), (" B ", "B"), ("Image A", "A"), ("image b", "B"), ("TIE", "tie"), (" Tie", "tie")],
)
def test_choice_case_whitespace_and_image_prefix_are_normalised(written, expected):
    doc = pair_doc()
    doc["aspects"]["aesthetic"]["preferred"] = written
    answer = parse_answer(json.dumps(doc), PAIR)
    assert answer.aspects["aesthetic"].preferred == expected
    assert answer.repairs == ("label_normalised",)


@pytest.mark.parametrize("written", ["C", "both", "A or B", "", None, 1])
def test_invalid_choices_are_rejected(written):
    doc = pair_doc()
    doc["aspects"]["aesthetic"]["preferred"] = written
    assert reject(json.dumps(doc)).reason == R.INVALID_CHOICE


def test_score_labels_are_normalised_too():
    doc = pair_doc()
    doc["aspects"]["aesthetic"]["scores"] = {"Image A": 4, "image b": 9}
    doc["aspects"]["aesthetic"]["preferred"] = "B"
    assert parse_answer(json.dumps(doc), PAIR).aspects["aesthetic"].scores == {"A": 4, "B": 9}


def test_contradictory_choice_keeps_the_explicit_choice_and_flags_it():
    doc = pair_doc()
    doc["aspects"]["aesthetic"]["preferred"] = "B"  # while A scored 8 and B 5
    judgment = parse_answer(json.dumps(doc), PAIR).aspects["aesthetic"]
    assert judgment.preferred == "B"
    assert judgment.ranking == (("B",), ("A",))
    assert judgment.scores_agree is False


def test_tie_with_equal_scores_agrees():
    doc = pair_doc()
    doc["aspects"]["harmlessness"].update(scores={"A": 10, "B": 10}, preferred="tie")
    judgment = parse_answer(json.dumps(doc), PAIR).aspects["harmlessness"]
    assert judgment.ranking == (("A", "B"),)
    assert judgment.scores_agree


def test_invalid_json_is_rejected():
    text = json.dumps(pair_doc())[:-5]
    error = reject(text)
    assert error.reason == R.INVALID_JSON
    assert error.raw == text


def test_missing_aspects_are_named():
    doc = pair_doc()
    del doc["aspects"]["fidelity"], doc["aspects"]["harmlessness"]
    error = reject(json.dumps(doc))
    assert error.reason == R.MISSING_ASPECT
    assert "fidelity" in error.message and "harmlessness" in error.message


def test_extra_aspect_is_ignored_and_recorded():
    doc = pair_doc()
    doc["aspects"]["humour"] = {"rationale": "x", "scores": {"A": 1, "B": 2}, "preferred": "B"}
    answer = parse_answer(json.dumps(doc), PAIR)
    assert set(answer.aspects) == set(ASPECTS)
    assert answer.repairs == ("extra_aspect_ignored",)


def test_aspects_at_top_level_are_unwrapped():
    answer = parse_answer(json.dumps(pair_doc()["aspects"]), PAIR)
    assert answer.repairs == ("aspects_unwrapped",)


@pytest.mark.parametrize("score", [0, 11, -3, 100])
def test_scores_out_of_range_are_rejected(score):
    doc = pair_doc()
    doc["aspects"]["prompt_following"]["scores"]["A"] = score
    error = reject(json.dumps(doc))
    assert error.reason == R.SCORE_OUT_OF_RANGE
    assert f"A={score}" in error.message and "1..10" in error.message


def test_scale_is_a_parameter():
    spec = AnswerSpec(mode="pair", labels=("A", "B"), aspect_keys=ASPECTS, scale=ScoreScale(0, 4))
    doc = pair_doc()
    for aspect in doc["aspects"].values():
        aspect["scores"] = {"A": 4, "B": 0}
    assert parse_answer(json.dumps(doc), spec).aspects["aesthetic"].scores == {"A": 4, "B": 0}
    assert reject(json.dumps(pair_doc()), spec).reason == R.SCORE_OUT_OF_RANGE  # 8 > 4


def test_missing_and_unknown_score_labels_are_rejected():
    doc = pair_doc()
    doc["aspects"]["aesthetic"]["scores"] = {"A": 5}
    assert reject(json.dumps(doc)).reason == R.MISSING_SCORE
    doc["aspects"]["aesthetic"]["scores"] = {"A": 5, "B": 4, "C": 3}
    assert reject(json.dumps(doc)).reason == R.SCHEMA_MISMATCH


def test_missing_rationale_is_a_schema_mismatch():
    doc = pair_doc()
    del doc["aspects"]["aesthetic"]["rationale"]
    error = reject(json.dumps(doc))
    assert error.reason == R.SCHEMA_MISMATCH
    assert "rationale" in error.message


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with evaluating these images.",
        "I’m sorry, I can’t assist with that request.",
        "I cannot evaluate images of real people.",
        "As an AI, I am unable to judge aesthetics.",
    ],
)
def test_refusals_in_text_are_recognised(text):
    assert reject(text).reason == R.REFUSAL


def test_refusal_field_wins():
    error = reject(None, refusal="I can't help with that.")
    assert error.reason == R.REFUSAL
    assert "can't help" in error.message


@pytest.mark.parametrize("text", ["", "   \n", None])
def test_empty_content_is_rejected(text):
    assert reject(text).reason == R.EMPTY


def test_truncated_answers_are_rejected_even_when_the_json_closes():
    assert reject(json.dumps(pair_doc())[:100], finish_reason="length").reason == R.TRUNCATED
    assert reject(json.dumps(pair_doc()), finish_reason="length").reason == R.TRUNCATED


def test_content_filter_is_rejected():
    assert reject("", finish_reason="content_filter").reason == R.CONTENT_FILTER


def test_plain_prose_without_json_is_invalid_json():
    assert reject("Image A is better on every aspect.").reason == R.INVALID_JSON


def test_non_object_json_is_a_schema_mismatch():
    assert reject("[1, 2, 3]").reason == R.SCHEMA_MISMATCH


# --- group mode ---------------------------------------------------------------------------------------


def test_valid_group_answer():
    answer = parse_answer(json.dumps(group_doc()), GROUP)
    judgment = answer.aspects["aesthetic"]
    assert judgment.preferred is None
    assert judgment.ranking == (("A",), ("B", "C"), ("D",))
    assert judgment.scores_agree


def test_group_ranking_as_flat_list_and_lowercase_labels_is_repaired():
    doc = group_doc()
    doc["aspects"]["aesthetic"]["ranking"] = ["a", "B", "image c", "D"]
    answer = parse_answer(json.dumps(doc), GROUP)
    assert answer.aspects["aesthetic"].ranking == (("A",), ("B",), ("C",), ("D",))
    assert answer.aspects["aesthetic"].scores_agree is False  # B and C have equal scores
    assert set(answer.repairs) == {"ranking_flat", "label_normalised"}


def test_group_ranking_order_inside_a_tier_does_not_matter():
    doc = group_doc()
    doc["aspects"]["aesthetic"]["ranking"] = [["A"], ["C", "B"], ["D"]]
    assert parse_answer(json.dumps(doc), GROUP).aspects["aesthetic"].ranking == (("A",), ("B", "C"), ("D",))


@pytest.mark.parametrize(
    ("ranking", "detail"),
    [
        ([["A"], ["B", "C"]], "missing: D"),
        ([["A", "B"], ["B", "C"], ["D"]], "repeated: B"),
        ([["A"], ["B"], ["C"], ["E"]], "'E'"),
        ([], "non-empty"),
        ("A>B>C>D", "non-empty"),
    ],
)
def test_invalid_group_rankings_are_rejected(ranking, detail):
    doc = group_doc()
    doc["aspects"]["fidelity"]["ranking"] = ranking
    error = reject(json.dumps(doc), GROUP)
    assert error.reason == R.INVALID_RANKING
    assert detail in error.message


def test_parse_does_not_mutate_its_input_document():
    doc = pair_doc()
    before = copy.deepcopy(doc)
    parse_answer(json.dumps(doc), PAIR)
    assert doc == before


def test_parsed_answer_dumps_to_json_for_storage():
    dumped = parse_answer(json.dumps(group_doc()), GROUP).model_dump(mode="json")
    assert dumped["aspects"]["aesthetic"]["ranking"] == [["A"], ["B", "C"], ["D"]]
    json.dumps(dumped)
