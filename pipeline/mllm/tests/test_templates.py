"""Prompt templates: versioned, rendered as system + user(text, images) messages, viewable as text."""

from __future__ import annotations

import json

import pytest

from pipeline.mllm import (
    DEFAULT_ASPECTS,
    TEMPLATES,
    Aspect,
    CallRequest,
    RequestImage,
    ScoreScale,
    render_messages,
)
from pipeline.mllm.templates import get_template, messages_as_text

URLS = ["data:image/jpeg;base64,AAAA", "data:image/jpeg;base64,BBBB"]


def test_pair_and_group_templates_exist_with_versions():
    assert get_template("vp-pair-v1").mode == "pair"
    assert get_template("vp-group-v1").mode == "group"
    assert set(TEMPLATES) >= {"vp-pair-v1", "vp-group-v1"}
    with pytest.raises(KeyError, match="vp-pair-v1"):
        get_template("vp-pair-v0")


def test_pair_messages_have_system_and_user_with_labelled_images():
    messages = render_messages("vp-pair-v1", prompt="a cat on a mat", image_urls=URLS)
    assert [m["role"] for m in messages] == ["system", "user"]
    parts = messages[1]["content"]
    assert [p["type"] for p in parts] == ["text", "text", "image_url", "text", "image_url", "text"]
    assert parts[1]["text"] == "Image A:" and parts[2]["image_url"]["url"] == URLS[0]
    assert parts[3]["text"] == "Image B:" and parts[4]["image_url"]["url"] == URLS[1]
    assert "a cat on a mat" in parts[0]["text"]
    instructions = parts[-1]["text"]
    for aspect in DEFAULT_ASPECTS:
        assert f"(key: {aspect.key})" in instructions and aspect.question in instructions
    assert '"tie"' in instructions and "one to three sentences" in instructions
    assert "9-10:" in instructions and "1-2:" in instructions  # rubric spread over the 1..10 scale


def test_scale_and_custom_aspects_are_rendered():
    humour = Aspect.custom(
        key="humour", question="Which image is funnier?", rubric=["Very funny.", "Not funny."]
    )
    messages = render_messages(
        "vp-group-v1", prompt="p", image_urls=URLS + URLS, aspects=[humour], scale=ScoreScale(1, 5)
    )
    text = messages[1]["content"][-1]["text"]
    assert "Humour (key: humour)" in text and "Which image is funnier?" in text
    assert "from 1 (worst) to 5 (best)" in text
    assert "3-5: Very funny." in text and "1-2: Not funny." in text
    assert "Rank all 4 images" in text
    assert "prompt_following" not in text


def test_aspect_keys_must_be_json_friendly():
    with pytest.raises(ValueError):
        Aspect(key="Prompt Following", name="x", question="y")


def test_plain_json_mode_spells_out_the_schema():
    request = CallRequest(key="1", prompt="p", images=(RequestImage("a"), RequestImage("b")))
    text = request.prompt_text(structured=False)
    block = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(block) == request.answer_spec().json_schema()
    assert "```json" not in request.prompt_text(structured=True)


def test_prompt_text_for_admins_shows_images_as_placeholders():
    request = CallRequest(
        key="1", prompt="two red cubes", images=(RequestImage("img-7"), RequestImage("img-9"))
    )
    text = request.prompt_text()
    assert text.startswith("[system]\n")
    assert "[user]" in text and "two red cubes" in text
    assert "<image: A = img-7>" in text and "<image: B = img-9>" in text
    assert "base64" not in text


def test_messages_as_text_handles_string_content():
    text = messages_as_text([{"role": "system", "content": "hello"}])
    assert text == "[system]\nhello\n"


def test_pair_mode_needs_two_images():
    with pytest.raises(ValueError, match="exactly 2"):
        CallRequest(key="1", prompt="p", images=(RequestImage("a"), RequestImage("b"), RequestImage("c")))


def test_schema_is_strict_and_closed():
    request = CallRequest(key="1", prompt="p", images=(RequestImage("a"), RequestImage("b")))
    fmt = request.answer_spec().response_format()
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    aspect = schema["properties"]["aspects"]["properties"]["fidelity"]
    assert aspect["required"] == ["rationale", "scores", "preferred"]
    assert aspect["additionalProperties"] is False
    assert aspect["properties"]["scores"]["properties"]["B"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10,
    }
