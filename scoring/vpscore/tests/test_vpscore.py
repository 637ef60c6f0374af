"""VP-Score on tiny random BLIP and CLIP backbones: loading, round trips, learning, splits and resuming."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from scoring.vpscore import load
from scoring.vpscore.backbone import build_tiny_backbone, load_backbone
from scoring.vpscore.data import Preference, split_by_prompt
from scoring.vpscore.model import VPScoreModel
from scoring.vpscore.train import FeatureSource, TrainConfig, pair_logits, train

from .synthetic import picture, preference_set

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def backbones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("backbones")
    return {kind: build_tiny_backbone(kind, root / kind) for kind in ("blip", "clip")}


def config(backbone: Path, kind: str, **overrides: object) -> TrainConfig:
    values: dict[str, object] = dict(
        backbone=str(backbone),
        backbone_kind=kind,
        learning_rate=1e-3,
        weight_decay=0.0,
        warmup_steps=10,
        batch_size=32,
        max_steps=200,
        eval_every=100,
        save_every=100,
        log_every=50,
        freeze_fraction=0.5,
    )
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]


def cross_accuracy(
    checkpoint: Path, rows: list[Preference], images: dict[str, Image.Image], head: str
) -> float:
    """How often `head` picks the winner of preferences labelled for another aspect."""
    vp = load(checkpoint)
    features = FeatureSource(vp.model, images.__getitem__, torch.device("cpu"), cache=True)
    with torch.no_grad():
        diffs = pair_logits(vp.model, vp.model, features, rows, torch.device("cpu"))[head]
    hits = [(float(d) > 0) == (r.target == 1.0) for d, r in zip(diffs, rows, strict=True)]
    return sum(hits) / len(hits)


@pytest.mark.parametrize("kind", ["blip", "clip"])
def test_a_tiny_backbone_loads_by_the_real_code_and_a_checkpoint_round_trip_scores_the_same(
    backbones, kind, tmp_path
):
    backbone = load_backbone(kind, backbones[kind])
    assert backbone.kind == kind and backbone.image_size == 32
    model = VPScoreModel(backbone, ["fidelity", "aesthetic"]).eval()
    model.normalisation.mean, model.normalisation.std = {"fidelity": 0.3}, {"fidelity": 2.0}
    import random

    rng = random.Random(0)
    images = [picture(rng, red_square=i % 2 == 0, blue_disc=i % 3 == 0) for i in range(5)]
    from scoring.vpscore.model import VPScore

    before = VPScore(model).score("two pink stars", images)
    model.save(tmp_path / "ckpt", meta={"tie_margin": {"fidelity": 0.1}})
    after = load(tmp_path / "ckpt")
    again = after.score("two pink stars", images)
    assert set(again) == {"fidelity", "aesthetic", "overall"}
    for aspect in before:
        assert again[aspect] == pytest.approx(before[aspect], abs=1e-5)
    with torch.no_grad():  # the random tower tells the images apart (BLIP's default init would not)
        bb = after.model.backbone
        ids, mask = bb.tokenize(["two pink stars"] * len(images))
        features = bb.joint(bb.vision_suffix(bb.vision_prefix(bb.pixels(images))), ids, mask)
    assert float(features.std(dim=0).mean()) > 1e-3
    p_a, choice = after.prefer("two pink stars", images[0], images[1])["fidelity"]
    assert 0.0 < p_a < 1.0 and choice in {"A", "B", "tie"}
    with pytest.raises(ValueError, match="no head for harmlessness"):
        after.score("x", images, ["harmlessness"])


@pytest.mark.parametrize("kind", ["blip", "clip"])
def test_it_learns_a_visible_property_and_a_learning_rate_of_zero_does_not(backbones, kind, tmp_path):
    rows, images, _ = preference_set(400, seed=1)
    learned = train(config(backbones[kind], kind), rows, images.__getitem__, tmp_path / "lr")
    control = train(
        config(backbones[kind], kind, learning_rate=0.0), rows, images.__getitem__, tmp_path / "zero"
    )
    assert learned.best["accuracy"]["fidelity"] >= 0.9, learned.best
    # The random initial model already leans a little on redness (a strong pixel signal): the control stays
    # at that starting point, well below what training reaches.
    assert control.best["accuracy"]["fidelity"] <= 0.75, control.best
    assert learned.best["accuracy"]["fidelity"] - control.best["accuracy"]["fidelity"] >= 0.2
    assert learned.best["n"]["fidelity"] >= 60  # validation is big enough to mean something


def test_two_aspects_each_head_learns_its_own_property_not_the_other(backbones, tmp_path):
    rows, images, _ = preference_set(400, seed=2, aspects=("fidelity", "aesthetic"))
    result = train(config(backbones["clip"], "clip"), rows, images.__getitem__, tmp_path / "out")
    assert result.best["accuracy"]["fidelity"] >= 0.9 and result.best["accuracy"]["aesthetic"] >= 0.9, (
        result.best
    )
    fresh, fresh_images, _ = preference_set(200, seed=3, aspects=("fidelity", "aesthetic"))
    fidelity = [r for r in fresh if r.aspect == "fidelity"]
    aesthetic = [r for r in fresh if r.aspect == "aesthetic"]
    assert cross_accuracy(tmp_path / "out" / "best", fidelity, fresh_images, "fidelity") >= 0.9
    assert 0.3 <= cross_accuracy(tmp_path / "out" / "best", aesthetic, fresh_images, "fidelity") <= 0.7
    assert 0.3 <= cross_accuracy(tmp_path / "out" / "best", fidelity, fresh_images, "aesthetic") <= 0.7


def test_the_split_keeps_every_prompt_on_one_side_and_is_seeded():
    rows, _, _ = preference_set(300, seed=4)
    train_rows, val_rows = split_by_prompt(rows, val_fraction=0.25, seed=7)
    assert not {r.prompt for r in train_rows} & {r.prompt for r in val_rows}
    assert len(train_rows) + len(val_rows) == len(rows) and val_rows
    assert split_by_prompt(rows, val_fraction=0.25, seed=7) == (train_rows, val_rows)
    assert split_by_prompt(rows, val_fraction=0.25, seed=8) != (train_rows, val_rows)


def test_a_stopped_run_resumes_from_its_step_and_ends_where_an_uninterrupted_run_ends(backbones, tmp_path):
    rows, images, _ = preference_set(120, seed=5)
    cfg = config(
        backbones["blip"], "blip", max_steps=12, eval_every=6, save_every=6, log_every=3, batch_size=16
    )
    straight = train(cfg, rows, images.__getitem__, tmp_path / "straight")

    calls = {"n": 0}

    def stop_after_five() -> bool:
        calls["n"] += 1
        return calls["n"] >= 5

    first = train(cfg, rows, images.__getitem__, tmp_path / "resumed", should_stop=stop_after_five)
    assert first.stopped and first.step == 5
    events: list[dict] = []
    second = train(cfg, rows, images.__getitem__, tmp_path / "resumed", on_log=events.append)
    assert events[0] == {"event": "resumed", "step": 5, "total": 12}
    assert second.step == 12 and not second.stopped
    assert [e["step"] for e in second.history if e["event"] == "eval"] == [6, 12]
    a = load(tmp_path / "straight" / "best").model.state_dict()
    b = load(tmp_path / "resumed" / "best").model.state_dict()
    assert straight.best["step"] == second.best["step"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)


def test_the_feature_cache_changes_speed_not_results(backbones, tmp_path):
    rows, images, _ = preference_set(60, seed=6)
    cfg = dict(max_steps=6, eval_every=6, save_every=6, log_every=2, batch_size=16)
    cached = train(config(backbones["blip"], "blip", **cfg), rows, images.__getitem__, tmp_path / "a")
    uncached = train(
        config(backbones["blip"], "blip", cache_features=False, **cfg),
        rows,
        images.__getitem__,
        tmp_path / "b",
    )
    losses = [e["loss"] for e in cached.history if e["event"] == "train"]
    assert losses == pytest.approx([e["loss"] for e in uncached.history if e["event"] == "train"], abs=1e-5)


def test_bad_configuration_and_bad_labels_are_refused():
    with pytest.raises(ValueError, match="ties must be"):
        TrainConfig(backbone="x", ties="maybe")
    with pytest.raises(ValueError, match="freeze_fraction"):
        TrainConfig(backbone="x", freeze_fraction=1.5)
    with pytest.raises(ValueError, match="target"):
        Preference("p", "a", "b", "fidelity", 0.7)
    with pytest.raises(ValueError, match="unknown backbone kind"):
        load_backbone("resnet", "nowhere")
