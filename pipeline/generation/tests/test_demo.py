import json
import random

import numpy as np
import pytest

from pipeline.generation import demo

PROMPT = "three red circles above a blue square"


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_same_prompt_seed_and_defects_give_identical_pixels():
    first = demo.render(PROMPT, seed=7, defects=["noise", "wrong_count"], size=96)
    second = demo.render(PROMPT, seed=7, defects=["wrong_count", "noise"], size=96)
    assert first.size == (96, 96)
    assert first.mode == "RGB"
    assert first.tobytes() == second.tobytes()


def test_equivalent_spellings_render_the_same_image():
    canonical = demo.render(PROMPT, seed=3, size=64)
    spelled = demo.render("  Three RED circles above ONE blue square. ", seed=3, size=64)
    assert canonical.tobytes() == spelled.tobytes()


def test_different_seeds_give_different_images():
    images = {demo.render(PROMPT, seed=seed, size=64).tobytes() for seed in range(5)}
    assert len(images) == 5


@pytest.mark.parametrize("defect", demo.DEFECTS)
def test_each_defect_changes_pixels_and_is_recorded(defect):
    clean, clean_record = demo.render_with_record(PROMPT, seed=11, size=128)
    broken, record = demo.render_with_record(PROMPT, seed=11, defects=[defect], size=128)
    assert clean_record["defects"] == []
    assert record["defects"] == [defect]
    assert defect in record
    changed = np.abs(pixels(clean) - pixels(broken)).max(axis=2) > 24
    # A visible change, not a handful of pixels.
    assert changed.mean() > 0.01, f"{defect} changed only {changed.mean():.4f} of the pixels"
    json.dumps(record)


def test_wrong_count_and_colour_record_expected_and_drawn():
    _, record = demo.render_with_record(PROMPT, seed=2, defects=["wrong_count", "wrong_colour"], size=64)
    count = record["wrong_count"]
    group = record["scene"]["groups"][count["group"]]
    assert count["expected"] == group["count"]
    assert abs(count["drawn"] - count["expected"]) == 1
    colour = record["wrong_colour"]
    assert colour["expected"] == record["scene"]["groups"][colour["group"]]["colour"]
    assert colour["drawn"] not in {"red", "blue"}


def test_unknown_defect_is_rejected():
    with pytest.raises(ValueError, match="smudge"):
        demo.render(PROMPT, seed=0, defects=["smudge"], size=64)
    with pytest.raises(TypeError):
        demo.render(PROMPT, seed=0, defects="blur", size=64)


def test_sample_defects_is_deterministic_and_respects_probabilities():
    assert demo.sample_defects(random.Random(1), p=0.0) == []
    assert demo.sample_defects(random.Random(1), p=1.0) == list(demo.DEFECTS)
    assert demo.sample_defects(random.Random(1), p={"blur": 1.0}) == ["blur"]
    runs = [demo.sample_defects(random.Random(5), p=0.3) for _ in range(2)]
    assert runs[0] == runs[1]
    with pytest.raises(ValueError, match="smudge"):
        demo.sample_defects(random.Random(1), p={"smudge": 0.5})


def test_parse_prompt_reads_groups_relation_and_background():
    scene = demo.parse_prompt("two green triangles next to a yellow star on a grey background")
    assert scene.groups == (
        demo.ObjectGroup(2, "green", "triangle"),
        demo.ObjectGroup(1, "yellow", "star"),
    )
    assert scene.relation == "next to"
    assert scene.background == "grey"
    assert demo.parse_prompt("4 gray crosses left of an orange ring").relation == "to the left of"


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("three red dogs", "'dogs'"),
        ("seven red circles", "'seven'"),
        ("three reddish circles", "'reddish'"),
        ("three red circles behind a blue square", "'behind'"),
        ("three red circles above a blue square on a grey carpet", "'carpet'"),
        ("three red circles above", "ends after 'above'"),
        ("", "empty"),
    ],
)
def test_parse_errors_name_the_word(text, word):
    with pytest.raises(ValueError, match=word):
        demo.parse_prompt(text)


def test_random_prompts_round_trip_through_the_grammar():
    rng = random.Random(0)
    for _ in range(300):
        prompt = demo.random_prompt(rng)
        scene = demo.parse_prompt(prompt)
        assert scene.to_prompt() == prompt
        assert demo.parse_prompt(scene.to_prompt()) == scene


def test_demo_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, pipeline.generation.demo; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
