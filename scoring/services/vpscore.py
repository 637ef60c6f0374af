"""VP-Score in the app: training data from judgments, the train and score jobs, and the accuracy table.

* **Data.** Label sources are AI judges (their first trial), the human majority per pair (strict rule: a
  split vote gives no label), or both with a weight for the human rows. Rejected judgments never count;
  flagged workers only when asked. Ties are dropped or kept as soft 0.5 targets.
* **Split by prompt.** Prompts are held out as a whole (seeded). When the held-out prompts have human labels,
  validation is the human majority on them, so the best checkpoint is chosen by accuracy against people.
* **Storage.** The best checkpoint's files go to the default storage under ``reward-models/<id>/`` with a
  ``COMPLETE`` marker written last; a scoring worker downloads them to a temp folder (no shared disk). The
  trainer's resumable state stays in the worker's work folder (``VPSCORE_WORK_DIR``).
* **A reward model is an annotator** of kind ``model``: scoring a campaign writes ``ImageScore`` rows and its
  pairwise choices as judgments (tie inside the margin calibrated on validation), so every agreement
  report, confusion matrix and leaderboard covers it.
"""

from __future__ import annotations

import io
import math
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image as PILImage

from annotate.models import Annotator, Aspect, Campaign, Image, Judgment, Pair
from core.jobs import JobContext, job_create
from core.models import Job
from scoring.models import ImageScore, RewardModel
from scoring.stats.agreement import agreement_statistic, majority_pair_counts
from scoring.stats.bootstrap import ItemStatistic, bootstrap_intervals
from scoring.stats.votes import majority_vote, ratio

CHECKPOINT_PREFIX = "reward-models"
COMPLETE_MARKER = "COMPLETE"
CHOICE_INDEX = {"A": 0, "tie": 1, "B": 2}
TARGET = {"A": 1.0, "B": 0.0, "tie": 0.5}
LABEL_SOURCES = ("ai", "human", "both")


@dataclass(frozen=True)
class Labelled:
    """One training or validation preference and the pair it came from."""

    pair_id: int
    preference: Any  # scoring.vpscore.data.Preference (imported lazily: torch stays out of the web process)


def _human_filter(include_flagged: bool) -> dict[str, Any]:
    statuses = (
        [Annotator.Status.ACTIVE, Annotator.Status.FLAGGED] if include_flagged else [Annotator.Status.ACTIVE]
    )
    return {"annotator__kind": Annotator.Kind.HUMAN, "annotator__status__in": statuses}


def _pairs(campaign_ids: Sequence[int]) -> dict[int, tuple[str, str, str]]:
    rows = Pair.objects.filter(campaign_id__in=campaign_ids, is_gold=False).values_list(
        "pk", "prompt__text", "image_a__file", "image_b__file"
    )
    return {pk: (prompt, a, b) for pk, prompt, a, b in rows}


def human_majorities(
    *, pair_ids: Iterable[int], aspect_keys: Sequence[str], include_flagged: bool = False
) -> dict[tuple[int, str], str]:
    """The strict human majority ("A", "B" or "tie") per (pair, aspect) that has one."""
    counts: dict[tuple[int, str], np.ndarray] = defaultdict(lambda: np.zeros(3, dtype=np.int64))
    rows = Judgment.objects.filter(
        pair_id__in=list(pair_ids),
        aspect__key__in=aspect_keys,
        rejected_at__isnull=True,
        **_human_filter(include_flagged),
    ).values_list("pair_id", "aspect__key", "choice")
    for pair_id, aspect, choice in rows:
        counts[(pair_id, aspect)][CHOICE_INDEX[choice]] += 1
    if not counts:
        return {}
    keys = list(counts)
    majority = majority_vote(np.stack([counts[k] for k in keys]), rule="strict")
    names = ["A", "tie", "B"]
    return {k: names[int(m)] for k, m in zip(keys, majority, strict=True) if m >= 0}


def labelled_preferences(reward_model: RewardModel) -> list[Labelled]:
    """The reward model's training labels from judgments, per its label source and filters."""
    from scoring.vpscore.data import Preference

    hp = reward_model.hyperparameters
    campaign_ids = list(reward_model.campaigns.values_list("pk", flat=True))
    aspect_keys = list(reward_model.aspects.values_list("key", flat=True))
    pairs = _pairs(campaign_ids)
    include_flagged = bool(hp.get("include_flagged", False))
    out: list[Labelled] = []

    def add(pair_id: int, aspect: str, choice: str, weight: float) -> None:
        prompt, a, b = pairs[pair_id]
        out.append(Labelled(pair_id, Preference(prompt, a, b, aspect, TARGET[choice], weight)))

    source = reward_model.label_source
    if source in ("ai", "both"):
        judges = hp.get("ai_judge_ids") or None
        rows = Judgment.objects.filter(
            pair_id__in=list(pairs),
            aspect__key__in=aspect_keys,
            annotator__kind=Annotator.Kind.AI,
            trial=1,
            rejected_at__isnull=True,
        )
        if judges:
            rows = rows.filter(annotator_id__in=judges)
        for pair_id, aspect, choice in rows.order_by("pk").values_list("pair_id", "aspect__key", "choice"):
            add(pair_id, aspect, choice, 1.0)
    if source in ("human", "both"):
        weight = float(hp.get("human_weight", 1.0))
        majorities = human_majorities(
            pair_ids=pairs, aspect_keys=aspect_keys, include_flagged=include_flagged
        )
        for (pair_id, aspect), choice in sorted(majorities.items()):
            add(pair_id, aspect, choice, weight)
    return out


@dataclass(frozen=True)
class TrainingSplit:
    train: list[Labelled]
    val: list[Labelled]
    validation: str  # "human" (human majority on held-out prompts) or "labels" (the label source's own)


def training_split(reward_model: RewardModel, labelled: list[Labelled]) -> TrainingSplit:
    """Hold out prompts as a whole; validate on the human majority there when it exists."""
    from scoring.vpscore.data import Preference, split_by_prompt

    hp = reward_model.hyperparameters
    seed, fraction = int(hp.get("seed", 0)), float(hp.get("val_fraction", 0.2))
    prefs = [x.preference for x in labelled]
    _, held = split_by_prompt(prefs, val_fraction=fraction, seed=seed)
    held_prompts = {p.prompt for p in held}
    train = [x for x in labelled if x.preference.prompt not in held_prompts]
    own_val = [x for x in labelled if x.preference.prompt in held_prompts]
    if hp.get("validation", "human") == "human":
        pairs = _pairs(list(reward_model.campaigns.values_list("pk", flat=True)))
        held_pairs = [pk for pk, (prompt, _a, _b) in pairs.items() if prompt in held_prompts]
        aspects = list(reward_model.aspects.values_list("key", flat=True))
        majorities = human_majorities(pair_ids=held_pairs, aspect_keys=aspects)
        human_val = [
            Labelled(pk, Preference(pairs[pk][0], pairs[pk][1], pairs[pk][2], aspect, TARGET[choice]))
            for (pk, aspect), choice in sorted(majorities.items())
        ]
        if any(x.preference.target != 0.5 for x in human_val):
            return TrainingSplit(train, human_val, "human")
    return TrainingSplit(train, own_val, "labels")


def open_stored_image(name: str) -> PILImage.Image:
    with default_storage.open(name, "rb") as handle:
        image = PILImage.open(io.BytesIO(handle.read()))
        image.load()
    return image


def work_dir(reward_model: RewardModel) -> Path:
    root = Path(getattr(settings, "VPSCORE_WORK_DIR", "") or Path(tempfile.gettempdir()) / "vpscore")
    # The creation time keeps two databases' reward model 1 (a test run, a demo) from sharing a folder.
    return root / f"reward-model-{reward_model.pk}-{reward_model.created_at:%Y%m%dT%H%M%S%f}"


def checkpoint_upload(folder: Path, prefix: str) -> list[str]:
    """Every file of `folder` under `prefix` in the default storage, the COMPLETE marker last."""
    marker = f"{prefix}/{COMPLETE_MARKER}"
    if default_storage.exists(marker):  # a checkpoint being replaced is not complete until the new marker
        default_storage.delete(marker)
    names = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = f"{prefix}/{path.relative_to(folder).as_posix()}"
        if default_storage.exists(name):
            default_storage.delete(name)
        with path.open("rb") as handle:
            default_storage.save(name, handle)
        names.append(name)
    manifest = "\n".join(n[len(prefix) + 1 :] for n in names)
    default_storage.save(f"{prefix}/{COMPLETE_MARKER}", ContentFile(manifest.encode()))
    return names


def checkpoint_download(prefix: str, into: Path) -> Path:
    """A stored checkpoint into a local folder; refuses one whose COMPLETE marker is missing."""
    marker = f"{prefix}/{COMPLETE_MARKER}"
    if not default_storage.exists(marker):
        raise FileNotFoundError(
            f"checkpoint {prefix!r} is incomplete or missing (no {COMPLETE_MARKER} marker)"
        )
    with default_storage.open(marker, "rb") as handle:
        files = [line for line in handle.read().decode().splitlines() if line]
    for relative in files:
        target = into / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with default_storage.open(f"{prefix}/{relative}", "rb") as src:
            target.write_bytes(src.read())
    return into


def _config(reward_model: RewardModel, aspects: list[str]) -> Any:
    from scoring.vpscore.train import TrainConfig

    hp = dict(reward_model.hyperparameters)
    known = set(TrainConfig.__dataclass_fields__)
    values = {k: v for k, v in hp.items() if k in known}
    values.update(
        backbone=reward_model.base_weights or reward_model.backbone,
        backbone_kind=reward_model.backbone_kind,
        aspects=aspects,
    )
    return TrainConfig(**values)


def train_job(ctx: JobContext) -> dict[str, Any]:
    """Job handler (TrainJobParams): train the reward model, store its checkpoint, then score its campaigns."""
    from scoring.vpscore.train import train

    reward_model = RewardModel.objects.get(pk=ctx.params.reward_model_id)
    RewardModel.objects.filter(pk=reward_model.pk).update(status=RewardModel.Status.TRAINING, job=ctx.job)
    aspects = sorted(reward_model.aspects.values_list("key", flat=True))
    split = training_split(reward_model, labelled_preferences(reward_model))
    if not split.train:
        raise ValueError(
            "no training labels: the chosen campaigns, aspects and label source have no judgments"
        )
    ctx.log(
        f"{len(split.train)} training preferences, {len(split.val)} validation "
        f"({'human majority on held-out prompts' if split.validation == 'human' else 'held-out labels'})"
    )
    config = _config(reward_model, aspects)
    history: list[dict[str, Any]] = list(reward_model.metrics.get("history", []))

    def on_log(entry: dict[str, Any]) -> None:
        if entry.get("event") == "resumed":
            ctx.log(f"resuming at step {entry['step']} of {entry['total']}")
            return
        history.append(
            {k: v for k, v in entry.items() if k != "n"} | ({"n": entry["n"]} if "n" in entry else {})
        )
        ctx.set_progress(int(entry["step"]), total=int(steps_total[0]) if steps_total else None)
        if entry["event"] == "eval":
            accuracy = ", ".join(f"{k} {v:.3f}" for k, v in sorted(entry["accuracy"].items()))
            ctx.log(f"step {entry['step']}: validation accuracy {accuracy}")
        RewardModel.objects.filter(pk=reward_model.pk).update(
            metrics={**reward_model.metrics, "history": history}
        )

    steps_total = [
        config.max_steps
        or math.ceil(len(split.train) / config.batch_size / config.grad_accum) * config.epochs
    ]
    ctx.set_progress(0, total=steps_total[0])
    folder = work_dir(reward_model)
    result = train(
        config,
        [x.preference for x in split.train],
        open_stored_image,
        folder,
        val=[x.preference for x in split.val],
        on_log=on_log,
        should_stop=ctx.should_stop,
        meta={
            "reward_model": reward_model.name,
            "validation": split.validation,
            "is_demo": reward_model.is_demo,
        },
    )
    if result.stopped:
        ctx.check_cancelled()
    prefix = f"{CHECKPOINT_PREFIX}/{reward_model.pk}"
    checkpoint_upload(folder / "best", prefix)
    metrics = {
        "history": history,
        "best": result.best,
        "validation": split.validation,
        "n_train": len(split.train),
        "n_val": len(split.val),
        "val_pair_ids": sorted({x.pair_id for x in split.val}),
    }
    RewardModel.objects.filter(pk=reward_model.pk).update(
        status=RewardModel.Status.READY, checkpoint=prefix, metrics=metrics
    )
    ctx.log(
        f"checkpoint stored under {prefix}; best mean validation accuracy {result.best.get('mean_accuracy', 0):.3f}"
    )
    shutil.rmtree(
        folder, ignore_errors=True
    )  # the resumable state is not needed once the checkpoint is stored
    reward_model.refresh_from_db()
    annotator_for(reward_model)
    scored = score_campaigns(ctx, reward_model, list(reward_model.campaigns.all()))
    return {"steps": result.step, "best": result.best, **scored}


def annotator_for(reward_model: RewardModel) -> Annotator:
    """The reward model's annotator (kind "model"), created once."""
    if reward_model.annotator_id:
        return reward_model.annotator  # type: ignore[return-value]
    annotator = Annotator.objects.create(kind=Annotator.Kind.MODEL, name=f"VP-Score: {reward_model.name}")
    RewardModel.objects.filter(pk=reward_model.pk).update(annotator=annotator)
    reward_model.annotator = annotator
    return annotator


def score_job(ctx: JobContext) -> dict[str, Any]:
    """Job handler (ScoreJobParams): score the images of campaigns and write the model's pair judgments."""
    reward_model = RewardModel.objects.get(pk=ctx.params.reward_model_id)
    if reward_model.status != RewardModel.Status.READY or not reward_model.checkpoint:
        raise ValueError(f"reward model {reward_model.name!r} has no finished checkpoint yet")
    annotator_for(reward_model)
    campaigns = list(Campaign.objects.filter(pk__in=ctx.params.campaign_ids))
    return score_campaigns(ctx, reward_model, campaigns)


def load_scorer(reward_model: RewardModel, folder: Path) -> Any:
    from scoring.vpscore import load

    return load(checkpoint_download(reward_model.checkpoint, folder))


def score_campaigns(ctx: JobContext, reward_model: RewardModel, campaigns: list[Campaign]) -> dict[str, Any]:
    """ImageScore for every image of the campaigns' pairs, then one judgment per pair and shared aspect."""
    with tempfile.TemporaryDirectory() as tmp:
        scorer = load_scorer(reward_model, Path(tmp))
        aspects = {a.key: a for a in Aspect.objects.filter(key__in=scorer.model.aspects)}
        pairs = list(
            Pair.objects.filter(campaign__in=campaigns)
            .select_related("image_a", "image_b", "prompt")
            .order_by("prompt_id", "pk")
        )
        by_prompt: dict[int, list[Pair]] = defaultdict(list)
        for pair in pairs:
            by_prompt[pair.prompt_id].append(pair)
        ctx.set_progress(0, total=len(by_prompt))
        margins = scorer.tie_margin
        n_scores = n_judgments = 0
        for done, group in enumerate(by_prompt.values(), start=1):
            ctx.check_cancelled()
            images: dict[int, Image] = {}
            for pair in group:
                images[pair.image_a_id] = pair.image_a
                images[pair.image_b_id] = pair.image_b
            ids = list(images)
            scores = scorer.score(
                group[0].prompt.text,
                [open_stored_image(str(images[i].file.name)) for i in ids],
                list(aspects),
            )
            per_image = {aspect: dict(zip(ids, values, strict=True)) for aspect, values in scores.items()}
            n_scores += _store_scores(reward_model, aspects, per_image)
            n_judgments += _store_judgments(reward_model, group, aspects, per_image, margins)
            ctx.set_progress(done)
    ctx.log(f"scored {n_scores} image × aspect values; {n_judgments} pair judgments written")
    return {"image_scores": n_scores, "judgments": n_judgments}


def _store_scores(
    reward_model: RewardModel, aspects: dict[str, Aspect], per_image: dict[str, dict[int, float]]
) -> int:
    rows = [
        ImageScore(image_id=image_id, reward_model=reward_model, aspect=aspects[key], score=value)
        for key, values in per_image.items()
        for image_id, value in values.items()
    ]
    ImageScore.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["image", "reward_model", "aspect"],
        update_fields=["score"],
    )
    return len(rows)


def _store_judgments(
    reward_model: RewardModel,
    pairs: list[Pair],
    aspects: dict[str, Aspect],
    per_image: dict[str, dict[int, float]],
    margins: dict[str, float],
) -> int:
    from scoring.vpscore.model import choice_from_difference

    annotator = reward_model.annotator
    campaign_aspects = {
        c: set(Campaign.objects.get(pk=c).aspects.values_list("key", flat=True))
        for c in {p.campaign_id for p in pairs}
    }
    rows = []
    for pair in pairs:
        for key in aspects:
            if key not in campaign_aspects[pair.campaign_id]:
                continue
            a, b = per_image[key][pair.image_a_id], per_image[key][pair.image_b_id]
            rows.append(
                Judgment(
                    pair=pair,
                    annotator=annotator,
                    aspect=aspects[key],
                    trial=1,
                    choice=choice_from_difference(a - b, margins.get(key, 0.0)),
                    presented_order="AB",
                    score_a=a,
                    score_b=b,
                    rationale=f"VP-Score difference {a - b:+.3f} (tie within ±{margins.get(key, 0.0):.3f})",
                    template_version="vpscore",
                )
            )
    with transaction.atomic():
        # A re-run rescores: the model's earlier judgments on these pairs are replaced, never duplicated.
        Judgment.objects.filter(annotator=annotator, pair__in=pairs).delete()
        Judgment.objects.bulk_create(rows)
    return len(rows)


# -- starting jobs -----------------------------------------------------------------------------------------


def reward_model_train_start(
    *,
    name: str,
    backbone: str,
    backbone_kind: str,
    campaigns: Sequence[Campaign],
    aspects: Sequence[Aspect],
    label_source: str = "ai",
    hyperparameters: dict[str, Any] | None = None,
    is_demo: bool = False,
    created_by: Any = None,
) -> RewardModel:
    """Create a reward model and queue its training job (gpu queue)."""
    from scoring.jobs import TRAIN, TrainJobParams

    if label_source not in LABEL_SOURCES:
        raise ValueError(f"label source must be one of {', '.join(LABEL_SOURCES)}")
    if backbone_kind not in ("blip", "clip"):
        raise ValueError("backbone kind must be blip or clip")
    if not campaigns or not aspects:
        raise ValueError("choose at least one campaign and one aspect")
    if not backbone.strip():
        raise ValueError("name a backbone: a hub id or a local folder")
    hp = dict(hyperparameters or {})
    _check_hyperparameters(hp)
    with transaction.atomic():
        reward_model = RewardModel.objects.create(
            name=name,
            backbone=backbone,
            backbone_kind=backbone_kind,
            label_source=label_source,
            hyperparameters=hp,
            is_demo=is_demo,
        )
        reward_model.campaigns.set(campaigns)
        reward_model.aspects.set(aspects)
        job = job_create(
            kind=TRAIN,
            params=TrainJobParams(reward_model_id=reward_model.pk),
            title=f"Train reward model {name}",
            campaign=campaigns[0],
            created_by=created_by,
        )
        reward_model.job = job
        reward_model.save(update_fields=["job"])
    return reward_model


def _check_hyperparameters(hp: dict[str, Any]) -> None:
    from scoring.vpscore.train import TrainConfig

    known = set(TrainConfig.__dataclass_fields__) | {
        "ai_judge_ids",
        "human_weight",
        "include_flagged",
        "validation",
    }
    unknown = sorted(set(hp) - known)
    if unknown:
        raise ValueError(f"unknown training setting(s): {', '.join(unknown)}")
    TrainConfig(
        **{k: v for k, v in hp.items() if k in TrainConfig.__dataclass_fields__ and k not in ("backbone",)}
    )


def reward_model_score_start(
    *, reward_model: RewardModel, campaigns: Sequence[Campaign], created_by: Any = None
) -> Job:
    from scoring.jobs import SCORE, ScoreJobParams

    if reward_model.status != RewardModel.Status.READY:
        raise ValueError("this reward model has not finished training")
    if not campaigns:
        raise ValueError("choose at least one campaign")
    return job_create(
        kind=SCORE,
        params=ScoreJobParams(reward_model_id=reward_model.pk, campaign_ids=[c.pk for c in campaigns]),
        title=f"Score with {reward_model.name}",
        campaign=campaigns[0],
        created_by=created_by,
    )


# -- the accuracy table --------------------------------------------------------------------------------------


def accuracy_table(reward_model: RewardModel, *, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Accuracy against the human majority per aspect on the held-out pairs (human ties excluded).

    Rows: this reward model, each AI judge on the same pairs, and a single human against the leave-one-out
    majority of the others (the human ceiling). Each cell: estimate, bootstrap 95% interval over pairs, n.
    """
    pair_ids = list(reward_model.metrics.get("val_pair_ids", []))
    aspects = list(reward_model.aspects.order_by("order", "key"))
    rows: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    for aspect in aspects:
        judgments = list(
            Judgment.objects.filter(pair_id__in=pair_ids, aspect=aspect, rejected_at__isnull=True, trial=1)
            .exclude(
                annotator__kind=Annotator.Kind.HUMAN,
                annotator__status__in=[Annotator.Status.FLAGGED, Annotator.Status.BLOCKED],
            )
            .values_list("pair_id", "annotator_id", "annotator__kind", "annotator__name", "choice")
        )
        index = {pk: i for i, pk in enumerate(sorted({j[0] for j in judgments}))}
        n = len(index)
        human = [
            (index[p], CHOICE_INDEX[c], a) for p, a, k, _name, c in judgments if k == Annotator.Kind.HUMAN
        ]
        counts = np.zeros((n, 3), dtype=np.int64)
        for item, choice, _a in human:
            counts[item, choice] += 1
        majority = majority_vote(counts, rule="strict") if n else np.zeros(0, dtype=np.int64)
        stats = {}
        for annotator_id in sorted({a for _p, a, k, _n, _c in judgments if k != Annotator.Kind.HUMAN}):
            mine = [(index[p], CHOICE_INDEX[c]) for p, a, _k, name, c in judgments if a == annotator_id]
            names[f"a{annotator_id}"] = next(name for _p, a, _k, name, _c in judgments if a == annotator_id)
            items, choices = (np.array(x, dtype=np.int64) for x in zip(*mine, strict=True))
            stats[f"a{annotator_id}"] = agreement_statistic(
                majority_pair_counts(items, choices, majority=majority), ties=False
            )
        stats["human"] = _single_human_statistic(human, counts)
        names["human"] = "Single human (vs the others' majority)"
        intervals = bootstrap_intervals(stats, n_resamples=n_resamples, seed=seed) if n else {}
        for key, stat in stats.items():
            interval = intervals.get(key)
            compared = int(np.asarray(stat.columns)[:, 1].sum()) if n else 0
            rows.setdefault(key, {})[aspect.key] = {
                "estimate": None
                if interval is None or np.isnan(interval.estimate)
                else round(interval.estimate, 4),
                "low": None if interval is None or np.isnan(interval.low) else round(interval.low, 4),
                "high": None if interval is None or np.isnan(interval.high) else round(interval.high, 4),
                "n": compared,
            }
    own = f"a{reward_model.annotator_id}" if reward_model.annotator_id else None
    ordered = ([own] if own in rows else []) + sorted(k for k in rows if k not in (own, "human")) + ["human"]
    return {
        "aspects": [{"key": a.key, "name": a.name} for a in aspects],
        "rows": [
            {"key": k, "name": names.get(k, k), "is_this_model": k == own, "cells": rows.get(k, {})}
            for k in ordered
            if k in rows
        ],
        "n_pairs": len(pair_ids),
        "protocol": "accuracy against the strict human majority on pairs of held-out prompts; human ties and "
        "model ties excluded; 95% bootstrap interval over pairs",
    }


def _single_human_statistic(human: list[tuple[int, int, int]], counts: np.ndarray) -> Any:
    """Each human vote against the strict majority of the other humans on that pair (ties excluded)."""
    n = counts.shape[0]
    agree = np.zeros(n)
    compared = np.zeros(n)
    for item, choice, _annotator in human:
        others = counts[item].copy()
        others[choice] -= 1
        if others.sum() == 0:
            continue
        majority = int(majority_vote(others.reshape(1, 3), rule="strict")[0])
        if majority < 0 or majority == 1 or choice == 1:
            continue
        compared[item] += 1
        agree[item] += int(choice == majority)
    return ItemStatistic(columns=np.column_stack([agree, compared]), from_sums=_first_over_second)


def _first_over_second(sums: np.ndarray) -> np.ndarray:
    return ratio(sums[..., 0], sums[..., 1])


def generator_means(reward_model: RewardModel, campaign: Campaign) -> list[dict[str, Any]]:
    """Mean VP-Score per generator and aspect over the campaign's images (for the leaderboard column)."""
    from django.db.models import Avg, Count

    rows = (
        ImageScore.objects.filter(reward_model=reward_model, image__prompt__campaigns=campaign)
        .values("image__generator__name", "aspect__key")
        .annotate(mean=Avg("score"), n=Count("id"))
        .order_by("image__generator__name", "aspect__key")
    )
    table: dict[str, dict[str, Any]] = {}
    for r in rows:
        table.setdefault(r["image__generator__name"], {})[r["aspect__key"]] = {"mean": r["mean"], "n": r["n"]}
    return [{"generator": g, "aspects": v} for g, v in table.items()]
