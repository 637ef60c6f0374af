"""VP-Score in the app: training on a campaign's AI labels through the real Celery worker, the checkpoint in
storage, the reward model as an annotator in the agreement report, the accuracy table and the pages."""

from __future__ import annotations

import io
import random

import pytest
from django.core.files.storage import default_storage

from annotate.models import Annotator, Judgment
from core.models import Job
from scoring.models import ImageScore, RewardModel
from scoring.report_params import ReportParameters
from scoring.services.reports import report_compute
from scoring.services.vpscore import (
    COMPLETE_MARKER,
    accuracy_table,
    checkpoint_download,
    checkpoint_upload,
    human_majorities,
    labelled_preferences,
    reward_model_score_start,
    reward_model_train_start,
    training_split,
)
from scoring.vpscore.backbone import build_tiny_backbone
from scoring.vpscore.tests.synthetic import PROMPTS, picture
from tests.factories import (
    AIAnnotatorFactory,
    CampaignFactory,
    GeneratorFactory,
    HumanAnnotatorFactory,
    ImageFactory,
    PairFactory,
    PromptFactory,
)
from tests.helpers import fresh, wait_for

pytestmark = pytest.mark.slow
worker_db = pytest.mark.django_db(transaction=True)

FAST_TRAINING = {
    "max_steps": 120,
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "warmup_steps": 10,
    "batch_size": 32,
    "eval_every": 40,
    "save_every": 40,
    "log_every": 20,
    "freeze_fraction": 0.5,
}


@pytest.fixture(autouse=True)
def _work_dir(settings, tmp_path):
    settings.VPSCORE_WORK_DIR = str(tmp_path / "vpscore-work")


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory) -> str:
    return str(build_tiny_backbone("blip", tmp_path_factory.mktemp("vpscore") / "tiny-blip"))


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def red_square_campaign(aspects, *, n_prompts: int = 24, pairs_per_prompt: int = 8, seed: int = 0):
    """Pairs where one image has a red square; the AI judge and (on some pairs) three humans prefer it."""
    rng = random.Random(seed)
    fidelity = next(a for a in aspects if a.key == "fidelity")
    campaign = CampaignFactory(aspects=[fidelity])
    judge = AIAnnotatorFactory(name="red-square-judge")
    humans = [HumanAnnotatorFactory() for _ in range(3)]
    generators = [GeneratorFactory(name="with-square"), GeneratorFactory(name="without-square")]
    for p in range(n_prompts):
        prompt = PromptFactory(text=f"{PROMPTS[p % len(PROMPTS)]} {p}")
        for k in range(pairs_per_prompt):
            first = ImageFactory(
                prompt=prompt,
                generator=generators[0],
                data=png(picture(rng, red_square=True, blue_disc=rng.random() < 0.5)),
            )
            second = ImageFactory(
                prompt=prompt,
                generator=generators[1],
                data=png(picture(rng, red_square=False, blue_disc=rng.random() < 0.5)),
            )
            a, b = sorted([first, second], key=lambda i: i.pk)
            pair = PairFactory(campaign=campaign, prompt=prompt, image_a=a, image_b=b)
            winner = "A" if a == first else "B"
            Judgment.objects.create(pair=pair, annotator=judge, aspect=fidelity, choice=winner)
            if k < 3:
                votes = [winner, winner, "B" if winner == "A" else "A"] if k == 0 else [winner] * 3
                for human, vote in zip(humans, votes, strict=True):
                    Judgment.objects.create(pair=pair, annotator=human, aspect=fidelity, choice=vote)
    return campaign, fidelity, judge


@worker_db
def test_a_reward_model_trains_on_ai_labels_through_the_worker_and_joins_the_report(
    worker, aspects, tiny_blip
):
    campaign, fidelity, judge = red_square_campaign(aspects)
    reward_model = reward_model_train_start(
        name="vp-tiny",
        backbone=tiny_blip,
        backbone_kind="blip",
        campaigns=[campaign],
        aspects=[fidelity],
        label_source="ai",
        hyperparameters=FAST_TRAINING,
    )
    job = wait_for(lambda: (j := fresh(reward_model.job_id)).is_finished and j, timeout=600)
    assert job.status == Job.Status.SUCCEEDED, (job.error, job.log)
    assert "validation accuracy" in job.log and "human majority on held-out prompts" in job.log
    reward_model.refresh_from_db()
    assert reward_model.status == RewardModel.Status.READY
    assert default_storage.exists(f"{reward_model.checkpoint}/{COMPLETE_MARKER}")
    assert reward_model.metrics["validation"] == "human"
    assert reward_model.metrics["best"]["accuracy"]["fidelity"] >= 0.85, reward_model.metrics["best"]
    evals = [h for h in reward_model.metrics["history"] if h["event"] == "eval"]
    assert [h["step"] for h in evals] == [40, 80, 120]

    # The reward model is an annotator of kind "model" that labelled every pair.
    annotator = reward_model.annotator
    assert annotator is not None and annotator.kind == Annotator.Kind.MODEL
    n_pairs = campaign.pairs.count()
    assert Judgment.objects.filter(annotator=annotator).count() == n_pairs
    assert ImageScore.objects.filter(reward_model=reward_model).count() == 2 * n_pairs

    # Its accuracy against people on held-out prompts, beside the AI judge and a single human.
    table = accuracy_table(reward_model, n_resamples=200)
    rows = {r["name"]: r for r in table["rows"]}
    own = rows[annotator.name]["cells"]["fidelity"]
    assert own["estimate"] >= 0.85 and own["low"] <= own["estimate"] <= own["high"] and own["n"] > 0
    assert rows["red-square-judge"]["cells"]["fidelity"]["estimate"] == 1.0
    assert table["rows"][0]["is_this_model"]
    assert rows["Single human (vs the others' majority)"]["cells"]["fidelity"]["n"] > 0

    # Every agreement report covers it like a judge, with its kind.
    report = report_compute(campaign=campaign, params=ReportParameters(campaign_ids=(campaign.pk,))).data
    judges = {j["name"]: j for j in report["ai_judges"]}
    assert judges[annotator.name]["kind"] == "model"

    # Scoring again replaces the model's judgments, never duplicates them.
    again = reward_model_score_start(reward_model=reward_model, campaigns=[campaign])
    again = wait_for(lambda: (j := fresh(again.pk)).is_finished and j, timeout=300)
    assert again.status == Job.Status.SUCCEEDED, again.error
    assert Judgment.objects.filter(annotator=annotator).count() == n_pairs


@pytest.mark.django_db
def test_labels_come_from_the_chosen_source_and_the_split_keeps_prompts_apart(aspects, tiny_blip):
    campaign, fidelity, judge = red_square_campaign(aspects, n_prompts=10, pairs_per_prompt=4)
    other = AIAnnotatorFactory(name="other-judge")
    pair = campaign.pairs.first()
    Judgment.objects.create(pair=pair, annotator=other, aspect=fidelity, choice="tie")
    rejected = Judgment.objects.filter(annotator=judge).last()
    rejected.rejected_at = rejected.created_at
    rejected.save()

    def make(source: str, **hp) -> RewardModel:
        rm = RewardModel.objects.create(
            name=f"rm-{source}-{len(hp)}", backbone=tiny_blip, label_source=source, hyperparameters=hp
        )
        rm.campaigns.set([campaign])
        rm.aspects.set([fidelity])
        return rm

    ai_only = labelled_preferences(make("ai", ai_judge_ids=[judge.pk]))
    assert len(ai_only) == campaign.pairs.count() - 1  # the rejected judgment never counts
    assert {x.preference.target for x in ai_only} <= {0.0, 1.0}
    every_judge = labelled_preferences(make("ai"))
    assert len(every_judge) == len(ai_only) + 1 and any(x.preference.target == 0.5 for x in every_judge)
    human = labelled_preferences(make("human"))
    majorities = human_majorities(
        pair_ids=campaign.pairs.values_list("pk", flat=True), aspect_keys=["fidelity"]
    )
    assert len(human) == len(majorities) == 10 * 3
    both = labelled_preferences(make("both", human_weight=2.0, ai_judge_ids=[judge.pk]))
    assert len(both) == len(ai_only) + len(human)
    assert {x.preference.weight for x in both} == {1.0, 2.0}

    rm = make("ai", ai_judge_ids=[judge.pk], val_fraction=0.3, seed=3)
    split = training_split(rm, labelled_preferences(rm))
    assert split.validation == "human"
    assert not {x.preference.prompt for x in split.train} & {x.preference.prompt for x in split.val}


@pytest.mark.django_db
def test_a_checkpoint_without_its_complete_marker_is_refused(tmp_path):
    folder = tmp_path / "ckpt"
    (folder / "backbone").mkdir(parents=True)
    (folder / "vpscore.json").write_text("{}")
    (folder / "backbone" / "config.json").write_text("{}")
    checkpoint_upload(folder, "reward-models/test")
    restored = checkpoint_download("reward-models/test", tmp_path / "back")
    assert (restored / "backbone" / "config.json").read_text() == "{}"
    default_storage.delete(f"reward-models/test/{COMPLETE_MARKER}")
    with pytest.raises(FileNotFoundError, match="incomplete"):
        checkpoint_download("reward-models/test", tmp_path / "again")


@pytest.mark.django_db
def test_bad_training_requests_are_refused_with_a_reason(aspects):
    campaign = CampaignFactory(aspects=aspects[:1])
    with pytest.raises(ValueError, match="label source"):
        reward_model_train_start(
            name="x",
            backbone="b",
            backbone_kind="blip",
            campaigns=[campaign],
            aspects=aspects[:1],
            label_source="crowd",
        )
    with pytest.raises(ValueError, match="unknown training setting"):
        reward_model_train_start(
            name="x",
            backbone="b",
            backbone_kind="blip",
            campaigns=[campaign],
            aspects=aspects[:1],
            hyperparameters={"lr": 1},
        )
    with pytest.raises(ValueError, match="ties must be"):
        reward_model_train_start(
            name="x",
            backbone="b",
            backbone_kind="blip",
            campaigns=[campaign],
            aspects=aspects[:1],
            hyperparameters={"ties": "x"},
        )
    with pytest.raises(ValueError, match="at least one campaign"):
        reward_model_train_start(
            name="x", backbone="b", backbone_kind="blip", campaigns=[], aspects=aspects[:1]
        )
    assert not RewardModel.objects.exists()
