"""Reward model pages: the list and training form, a model's page (curves, accuracy table, means, progress),
its JSON, the scoring endpoint (uploads through the image checks) and the mean VP-Score leaderboard column."""

from __future__ import annotations

import io
import random

import pytest
from django.urls import reverse

from annotate.models import Judgment
from core.jobs import JobContext
from core.models import Job
from scoring.jobs import TRAIN
from scoring.models import ImageScore, RewardModel
from scoring.report_params import ReportParameters
from scoring.services.reports import report_compute
from scoring.services.vpscore import (
    CHECKPOINT_PREFIX,
    checkpoint_upload,
    load_scorer,
    reward_model_score_start,
    score_job,
)
from scoring.vpscore.backbone import build_tiny_backbone, load_backbone
from scoring.vpscore.model import VPScoreModel
from scoring.vpscore.tests.synthetic import picture
from tests.factories import AdminFactory, UserFactory, png_bytes
from tests.scoring.test_vpscore_jobs import red_square_campaign

HISTORY = [
    {"event": "train", "step": 10, "loss": 0.69, "lr": 1e-4},
    {"event": "train", "step": 20, "loss": 0.41, "lr": 1e-4},
    {"event": "eval", "step": 20, "accuracy": {"fidelity": 0.8}, "n": {"fidelity": 12}},
    {"event": "train", "step": 30, "loss": 0.22, "lr": 5e-5},
    {"event": "eval", "step": 30, "accuracy": {"fidelity": 0.9}, "n": {"fidelity": 12}},
]


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory) -> str:
    return str(build_tiny_backbone("blip", tmp_path_factory.mktemp("vpscore-pages") / "tiny-blip"))


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory())
    return client


@pytest.fixture
def ready_model(aspects, tiny_blip, tmp_path):
    """A reward model with an (untrained) stored checkpoint that has scored its campaign."""
    campaign, fidelity, _judge = red_square_campaign(aspects, n_prompts=4, pairs_per_prompt=3)
    model = VPScoreModel(load_backbone("blip", tiny_blip), ["fidelity"])
    folder = model.save(tmp_path / "ckpt", meta={"tie_margin": {"fidelity": 0.0}})
    reward_model = RewardModel.objects.create(
        name="vp-page",
        backbone=tiny_blip,
        status=RewardModel.Status.READY,
        is_demo=True,
        metrics={
            "history": HISTORY,
            "best": {"mean_accuracy": 0.9, "step": 30, "accuracy": {"fidelity": 0.9}},
            "val_pair_ids": list(campaign.pairs.values_list("pk", flat=True)),
            "n_train": 40,
            "n_val": 12,
            "validation": "human",
        },
    )
    reward_model.checkpoint = f"{CHECKPOINT_PREFIX}/{reward_model.pk}"
    reward_model.save()
    checkpoint_upload(folder, reward_model.checkpoint)
    reward_model.campaigns.set([campaign])
    reward_model.aspects.set([fidelity])
    job = reward_model_score_start(reward_model=reward_model, campaigns=[campaign])
    score_job(JobContext(job))
    reward_model.refresh_from_db()
    return reward_model, campaign


@pytest.mark.django_db
def test_the_training_form_queues_a_gpu_job_and_refuses_bad_input_with_reasons(admin_client, aspects):
    campaign, fidelity, judge = red_square_campaign(aspects, n_prompts=2, pairs_per_prompt=1)
    url = reverse("scoring:reward-models")
    page = admin_client.get(url)
    assert page.status_code == 200 and b"Train a reward model" in page.content

    missing = admin_client.post(url, {"name": "rm", "backbone_kind": "blip", "backbone": "x"})
    assert missing.status_code == 422 and not RewardModel.objects.exists()
    assert b"This field is required" in missing.content

    form = {
        "name": "vp-form",
        "backbone_kind": "clip",
        "backbone": "openai/clip-vit-base-patch32",
        "label_source": "both",
        "campaigns": [campaign.pk],
        "aspects": [fidelity.pk],
        "ai_judges": [judge.pk],
        "human_weight": "2",
        "ties": "soft",
        "validation": "human",
        "freeze_fraction": "0.7",
        "learning_rate": "0.00002",
        "batch_size": "8",
        "grad_accum": "2",
        "epochs": "3",
        "warmup_steps": "5",
        "val_fraction": "0.25",
        "seed": "4",
    }
    answer = admin_client.post(url, form)
    reward_model = RewardModel.objects.get(name="vp-form")
    assert answer.status_code == 302 and answer["Location"] == reverse(
        "scoring:reward-model", args=[reward_model.pk]
    )
    assert reward_model.backbone_kind == "clip" and reward_model.label_source == "both"
    assert reward_model.hyperparameters["ai_judge_ids"] == [judge.pk]
    assert reward_model.hyperparameters["ties"] == "soft" and reward_model.hyperparameters["grad_accum"] == 2
    assert reward_model.job.kind == TRAIN and reward_model.job.queue == "gpu"

    again = admin_client.post(url, form)  # the same name again
    assert again.status_code == 422 and b"choose another name" in again.content
    assert admin_client.get(reverse("scoring:reward-model", args=[reward_model.pk])).status_code == 200


@pytest.mark.django_db
def test_pages_are_for_staff_only(client, ready_model):
    reward_model, _campaign = ready_model
    client.force_login(UserFactory())
    assert client.get(reverse("scoring:reward-models")).status_code in (302, 403)
    assert client.get(reverse("scoring:reward-model", args=[reward_model.pk])).status_code in (302, 403)
    assert client.get(reverse("scoring:reward-model-json", args=[reward_model.pk])).status_code == 403
    endpoint = reverse("scoring:reward-model-score-images", args=[reward_model.pk])
    assert client.post(endpoint, {"prompt": "x"}).status_code == 403


@pytest.mark.django_db
def test_a_model_page_shows_curves_the_accuracy_table_and_generator_means(admin_client, ready_model):
    reward_model, campaign = ready_model
    page = admin_client.get(reverse("scoring:reward-model", args=[reward_model.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "demo model" in html
    assert "<title>Training loss (pairwise)</title>" in html and "polyline" in html
    assert "<title>Validation accuracy per aspect</title>" in html
    assert "Accuracy against people" in html and "Single human" in html and "red-square-judge" in html
    assert reward_model.annotator.name in html
    assert "Mean VP-Score per generator" in html and "with-square" in html

    data = admin_client.get(reverse("scoring:reward-model-json", args=[reward_model.pk])).json()
    assert data["status"] == "ready" and data["is_demo"] is True and data["aspects"] == ["fidelity"]
    rows = {r["name"]: r for r in data["accuracy"]["rows"]}
    assert rows[reward_model.annotator.name]["is_this_model"]
    assert rows[reward_model.annotator.name]["cells"]["fidelity"]["n"] > 0
    assert data["metrics"]["history"] == HISTORY


@pytest.mark.django_db
def test_the_progress_partial_polls_while_training_and_reloads_when_done(admin_client, ready_model):
    reward_model, _campaign = ready_model
    job = Job.objects.create(kind=TRAIN, title="t", status=Job.Status.RUNNING, queue="gpu")
    RewardModel.objects.filter(pk=reward_model.pk).update(job=job)
    url = reverse("scoring:reward-model-progress", args=[reward_model.pk])
    running = admin_client.get(url)
    assert 'hx-trigger="every 2s"' in running.content.decode() and "HX-Refresh" not in running
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED)
    done = admin_client.get(url)
    assert done["HX-Refresh"] == "true" and "every 2s" not in done.content.decode()


@pytest.mark.django_db
def test_the_scoring_endpoint_scores_uploads_after_the_image_checks(admin_client, ready_model, tiny_blip):
    reward_model, _campaign = ready_model
    url = reverse("scoring:reward-model-score-images", args=[reward_model.pk])
    rng = random.Random(5)
    images = [picture(rng, red_square=True, blue_disc=False), picture(rng, red_square=False, blue_disc=True)]
    files = [io.BytesIO(png(i)) for i in images]
    for k, f in enumerate(files):
        f.name = f"img{k}.png"
    answer = admin_client.post(url, {"prompt": "one green square", "images": files})
    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["aspects"] == ["fidelity", "overall"]
    assert [i["filename"] for i in data["images"]] == ["img0.png", "img1.png"]
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        direct = load_scorer(reward_model, Path(tmp)).score("one green square", images)
    for k, image in enumerate(data["images"]):
        for aspect, value in image["scores"].items():
            assert value == pytest.approx(direct[aspect][k], abs=1e-5)

    fake = io.BytesIO(b"<html>not an image</html>")
    fake.name = "evil.png"
    refused = admin_client.post(url, {"prompt": "p", "images": [io.BytesIO(png_bytes()), fake]})
    assert refused.status_code == 400 and "not an image" in refused.json()["error"]
    assert refused.json()["filename"] == "evil.png"
    no_prompt = admin_client.post(url, {"prompt": " ", "images": [io.BytesIO(png_bytes())]})
    assert no_prompt.status_code == 400 and "prompt" in no_prompt.json()["error"]
    assert admin_client.post(url, {"prompt": "p"}).json()["error"].startswith("send one or more image")
    RewardModel.objects.filter(pk=reward_model.pk).update(status=RewardModel.Status.TRAINING)
    assert admin_client.post(url, {"prompt": "p", "images": [io.BytesIO(png_bytes())]}).status_code == 409


@pytest.mark.django_db
def test_the_report_leaderboard_gains_a_mean_vpscore_column(admin_client, ready_model):
    reward_model, campaign = ready_model
    report_compute(campaign=campaign, params=ReportParameters(campaign_ids=(campaign.pk,)))
    html = admin_client.get(reverse("scoring:report", args=[campaign.slug]) + "?aspect=fidelity").content
    text = html.decode()
    assert "Mean VP-Score" in text and "vp-page (demo)" in text
    means = {
        s.image.generator.name: s.score
        for s in ImageScore.objects.filter(reward_model=reward_model).select_related("image__generator")
    }
    assert means  # scored
    assert Judgment.objects.filter(annotator=reward_model.annotator).count() == campaign.pairs.count()
