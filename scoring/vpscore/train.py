"""Training VP-Score with Hugging Face accelerate: one code path in the app's GPU job and outside it.

    accelerate launch -m scoring.vpscore.train CONFIG.json

CONFIG.json holds a `TrainConfig` plus ``"data": "pairs.parquet"`` (the app's pairwise export) and
``"output": "folder"``. Inside the app, `train()` is called directly with preferences built from judgments.

The loop: pairwise loss −log σ(r_w − r_l) per aspect head (targets 1 / 0, or 0.5 for kept ties), missing
aspects masked; every preference also trains the overall head. AdamW, linear warmup then cosine decay,
gradient accumulation, bf16 / fp16 autocast on GPU, seeded order. Validation accuracy per aspect every
`eval_every` steps; the best checkpoint (mean accuracy over aspects) is kept in ``output/best``; the last
state (model, optimizer, scheduler, RNG, step) in ``output/last`` every `save_every` steps and on stop, so a
crashed or cancelled run resumes from where it was.
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .backbone import load_backbone
from .data import ImageLoader, Preference, drop_ties, read_pairs_parquet, snapshot, split_by_prompt
from .model import OVERALL, Normalisation, VPScoreModel, choice_from_difference

MIXED_PRECISION = ("auto", "no", "bf16", "fp16")


@dataclass
class TrainConfig:
    backbone: str = ""
    backbone_kind: str = "blip"
    aspects: list[str] = field(default_factory=list)
    freeze_fraction: float = 0.7
    learning_rate: float = 1e-5
    weight_decay: float = 0.01
    warmup_steps: int = 0
    batch_size: int = 16
    grad_accum: int = 1
    epochs: int = 10
    max_steps: int = 0  # 0: epochs decide
    eval_every: int = 50
    save_every: int = 50
    log_every: int = 10
    seed: int = 0
    val_fraction: float = 0.2
    ties: str = "drop"  # "drop" or "soft"
    cache_features: bool = True
    mixed_precision: str = "auto"
    device: str = ""  # "": accelerate decides (CUDA when there is one)

    def __post_init__(self) -> None:
        if self.ties not in ("drop", "soft"):
            raise ValueError(f"ties must be 'drop' or 'soft', got {self.ties!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {', '.join(MIXED_PRECISION)}")
        for name in ("batch_size", "grad_accum", "epochs", "eval_every", "save_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0.0 <= self.freeze_fraction <= 1.0:
            raise ValueError("freeze_fraction must be within [0, 1]")


@dataclass
class TrainResult:
    step: int
    total_steps: int
    best: dict[str, Any]
    history: list[dict[str, Any]]
    stopped: bool = False


class Stopped(Exception):
    """Raised inside the loop when `should_stop()` says so (after the last state is saved)."""


class FeatureSource:
    """Vision prefixes per image key: computed once and kept (cache on) or from pixels every step (off)."""

    def __init__(
        self, model: VPScoreModel, load_image: ImageLoader, device: torch.device, *, cache: bool
    ) -> None:
        self.model, self.load_image, self.device, self.cache = model, load_image, device, cache
        self.pixels: dict[str, torch.Tensor] = {}
        self.prefixes: dict[str, torch.Tensor] = {}

    def _pixels(self, key: str) -> torch.Tensor:
        if key not in self.pixels:
            self.pixels[key] = self.model.backbone.pixels([self.load_image(key)])[0]
        return self.pixels[key]

    def __call__(self, keys: Sequence[str]) -> torch.Tensor:
        backbone = self.model.backbone
        if not self.cache:
            batch = torch.stack([self._pixels(k) for k in keys]).to(self.device)
            with torch.no_grad() if backbone.prefix_frozen else torch.enable_grad():
                return backbone.vision_prefix(batch)
        todo = [k for k in dict.fromkeys(keys) if k not in self.prefixes]
        for start in range(0, len(todo), 64):
            chunk = todo[start : start + 64]
            with torch.no_grad():
                out = backbone.vision_prefix(torch.stack([self._pixels(k) for k in chunk]).to(self.device))
            for k, v in zip(chunk, out, strict=True):
                self.prefixes[k] = v
        return torch.stack([self.prefixes[k] for k in keys])


def _aspect_index(aspects: Sequence[str]) -> dict[str, int]:
    return {a: i for i, a in enumerate(aspects)}


def pair_logits(
    model: nn.Module,
    core: VPScoreModel,
    features: FeatureSource,
    rows: Sequence[Preference],
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """r_a − r_b per head for each row (all heads; the loss masks the ones a row has no label for)."""
    prompts = [r.prompt for r in rows] * 2
    keys = [r.image_a for r in rows] + [r.image_b for r in rows]
    ids, mask = core.backbone.tokenize(prompts, device)
    raw = model(features(keys), ids, mask)
    n = len(rows)
    return {name: scores[:n] - scores[n:] for name, scores in raw.items()}


def pairwise_loss(
    differences: dict[str, torch.Tensor], rows: Sequence[Preference], aspects: Sequence[str]
) -> torch.Tensor:
    """Mean over rows of BCE(σ(r_a − r_b), target) on the row's aspect head and on the overall head."""
    device = next(iter(differences.values())).device
    target = torch.tensor([r.target for r in rows], device=device, dtype=torch.float32)
    weight = torch.tensor([r.weight for r in rows], device=device, dtype=torch.float32)
    index = _aspect_index(aspects)
    stacked = torch.stack([differences[a].float() for a in aspects], dim=1)  # rows × aspects
    own = torch.tensor([index.get(r.aspect, -1) for r in rows], device=device)
    known = own >= 0
    bce = nn.functional.binary_cross_entropy_with_logits
    loss = bce(differences[OVERALL].float(), target, weight=weight, reduction="sum")
    if bool(known.any()):
        picked = stacked[known].gather(1, own[known].unsqueeze(1)).squeeze(1)
        loss = loss + bce(picked, target[known], weight=weight[known], reduction="sum")
    return loss / (weight.sum() * 2)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    core: VPScoreModel,
    features: FeatureSource,
    rows: Sequence[Preference],
    device: torch.device,
    batch: int = 64,
) -> dict[str, Any]:
    """Accuracy per aspect (and overall) on non-tie rows, and the differences for tie-margin calibration."""
    was_training = model.training
    model.eval()
    correct: dict[str, int] = {}
    counted: dict[str, int] = {}
    differences: dict[str, list[tuple[float, float]]] = {}
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        diffs = pair_logits(model, core, features, chunk, device)
        for i, row in enumerate(chunk):
            for head in {row.aspect, OVERALL} & set(diffs):
                d = float(diffs[head][i])
                differences.setdefault(head, []).append((d, row.target))
                if row.target != 0.5:
                    counted[head] = counted.get(head, 0) + 1
                    correct[head] = correct.get(head, 0) + int((d > 0) == (row.target == 1.0))
    model.train(was_training)
    accuracy = {h: correct.get(h, 0) / n for h, n in counted.items() if n}
    aspect_acc = [accuracy[a] for a in core.aspects if a in accuracy]
    return {
        "accuracy": accuracy,
        "n": counted,
        "mean_accuracy": float(np.mean(aspect_acc)) if aspect_acc else accuracy.get(OVERALL, 0.0),
        "differences": differences,
    }


def calibrate_tie_margin(differences: Sequence[tuple[float, float]], std: float) -> float:
    """The |difference| (in normalised units) under which a pair is called a tie, best on validation.

    Without ties in the validation labels the margin is 0 (every pair gets a side).
    """
    if not any(t == 0.5 for _, t in differences):
        return 0.0
    scaled = np.array([abs(d) / (std or 1.0) for d, _ in differences])
    best_margin, best_hits = 0.0, -1
    for margin in [0.0, *np.quantile(scaled, np.linspace(0.05, 0.95, 19)).tolist()]:
        hits = 0
        for (d, target), value in zip(differences, scaled, strict=True):
            choice = choice_from_difference(d, margin * (std or 1.0)) if value > margin else "tie"
            hits += int(choice == {1.0: "A", 0.0: "B", 0.5: "tie"}[target])
        if hits > best_hits:
            best_margin, best_hits = float(margin), hits
    return best_margin


@torch.no_grad()
def measure_normalisation(
    core: VPScoreModel, features: FeatureSource, rows: Sequence[Preference], device: torch.device
) -> Normalisation:
    """Mean and std of each head's raw score over the training images (each with its prompt)."""
    seen: dict[tuple[str, str], None] = {}
    for r in rows:
        seen[(r.prompt, r.image_a)] = None
        seen[(r.prompt, r.image_b)] = None
    items = list(seen)
    was_training = core.training
    core.eval()
    collected: dict[str, list[float]] = {h: [] for h in core.head_names}
    for start in range(0, len(items), 64):
        chunk = items[start : start + 64]
        ids, mask = core.backbone.tokenize([p for p, _ in chunk], device)
        raw = core(features([k for _, k in chunk]), ids, mask)
        for h in core.head_names:
            collected[h].extend(raw[h].float().cpu().tolist())
    core.train(was_training)
    return Normalisation(
        mean={h: float(np.mean(v)) for h, v in collected.items() if v},
        std={h: float(np.std(v)) or 1.0 for h, v in collected.items() if v},
    )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def train(
    config: TrainConfig,
    preferences: Sequence[Preference],
    load_image: ImageLoader,
    output: str | Path,
    *,
    val: Sequence[Preference] | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    meta: dict[str, Any] | None = None,
) -> TrainResult:
    """Train (or resume) into `output`; returns where it ended and the best validation figures.

    Without `val`, the preferences are split by prompt (`val_fraction`, seeded).
    """
    from accelerate import Accelerator
    from transformers import get_cosine_schedule_with_warmup

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    rows = list(preferences) if config.ties == "soft" else drop_ties(preferences)
    if val is None:
        train_rows, val_rows = split_by_prompt(rows, val_fraction=config.val_fraction, seed=config.seed)
    else:
        train_rows, val_rows = rows, list(val)
    if not train_rows:
        raise ValueError("no training preferences (after dropping ties and holding out validation prompts)")
    aspects = config.aspects or sorted({r.aspect for r in train_rows} - {OVERALL})

    mixed = config.mixed_precision
    on_gpu = torch.cuda.is_available() and config.device != "cpu"
    if mixed == "auto":
        mixed = "bf16" if on_gpu and torch.cuda.is_bf16_supported() else "no"
    accelerator = Accelerator(
        mixed_precision=mixed, cpu=not on_gpu, gradient_accumulation_steps=config.grad_accum
    )
    _seed_everything(config.seed)
    backbone = load_backbone(config.backbone_kind, config.backbone)
    backbone.freeze(config.freeze_fraction)
    core = VPScoreModel(backbone, aspects)
    device = accelerator.device
    core.to(device)

    steps_per_epoch = math.ceil(len(train_rows) / config.batch_size / config.grad_accum)
    total = config.max_steps or steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(
        core.trainable_parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = get_cosine_schedule_with_warmup(optimizer, config.warmup_steps, total)
    model, optimizer, scheduler = accelerator.prepare(core, optimizer, scheduler)
    features = FeatureSource(core, load_image, device, cache=config.cache_features and backbone.prefix_frozen)

    state_path = output / "last"
    progress_path = output / "progress.json"
    step, history = 0, []
    best: dict[str, Any] = {"mean_accuracy": -1.0}
    if (state_path / "trainer.json").is_file():
        accelerator.load_state(str(state_path))
        saved = json.loads((state_path / "trainer.json").read_text())
        step, history, best = saved["step"], saved["history"], saved["best"]
        if on_log:
            on_log({"event": "resumed", "step": step, "total": total})

    def save_last() -> None:
        accelerator.save_state(str(state_path))
        if accelerator.is_main_process:
            (state_path / "trainer.json").write_text(
                json.dumps({"step": step, "history": history, "best": best})
            )

    def log(entry: dict[str, Any]) -> None:
        history.append(entry)
        if accelerator.is_main_process:
            progress_path.write_text(json.dumps({"step": step, "total": total, "last": entry}))
        if on_log:
            on_log(entry)

    per_step = config.batch_size * config.grad_accum
    model.train()
    running: list[float] = []
    stopped = False
    while step < total:
        epoch, position = divmod(step, steps_per_epoch)
        order = _epoch_order(len(train_rows), config.seed, epoch)
        start = position * per_step
        batch_rows = [train_rows[i] for i in order[start : start + per_step]] or [
            train_rows[i] for i in order[:per_step]
        ]
        mine = batch_rows[accelerator.process_index :: accelerator.num_processes] or batch_rows
        for micro in range(0, len(mine), config.batch_size):
            chunk = mine[micro : micro + config.batch_size]
            with accelerator.accumulate(model), accelerator.autocast():
                loss = pairwise_loss(pair_logits(model, core, features, chunk, device), chunk, core.aspects)
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            running.append(float(loss.detach()))
        step += 1
        if step % config.log_every == 0 or step == total:
            log(
                {
                    "event": "train",
                    "step": step,
                    "loss": float(np.mean(running)),
                    "lr": scheduler.get_last_lr()[0],
                }
            )
            running = []
        if val_rows and (step % config.eval_every == 0 or step == total):
            result = evaluate(model, core, features, val_rows, device)
            entry = {"event": "eval", "step": step, "accuracy": result["accuracy"], "n": result["n"]}
            log(entry)
            if result["mean_accuracy"] > best["mean_accuracy"]:
                best = {
                    "mean_accuracy": result["mean_accuracy"],
                    "step": step,
                    "accuracy": result["accuracy"],
                    "n": result["n"],
                }
                _save_best(
                    core, features, train_rows, val_rows, result, output / "best", config, best, meta, device
                )
        elif not val_rows and step == total:
            best = {"mean_accuracy": float("nan"), "step": step, "accuracy": {}, "n": {}}
            _save_best(
                core, features, train_rows, val_rows, None, output / "best", config, best, meta, device
            )
        if step % config.save_every == 0 or step == total:
            save_last()
        if should_stop is not None and should_stop() and step < total:
            save_last()
            stopped = True
            break
    return TrainResult(step=step, total_steps=total, best=best, history=history, stopped=stopped)


def _save_best(
    core: VPScoreModel,
    features: FeatureSource,
    train_rows: Sequence[Preference],
    val_rows: Sequence[Preference],
    result: dict[str, Any] | None,
    folder: Path,
    config: TrainConfig,
    best: dict[str, Any],
    meta: dict[str, Any] | None,
    device: torch.device,
) -> None:
    core.normalisation = measure_normalisation(core, features, train_rows, device)
    margins = {}
    if result is not None:
        for head, diffs in result["differences"].items():
            margins[head] = calibrate_tie_margin(diffs, core.normalisation.std.get(head, 1.0))
    core.save(
        folder,
        meta={
            "config": asdict(config),
            "data": {"train": snapshot(train_rows), "validation": snapshot(val_rows)},
            "metrics": best,
            "tie_margin": margins,
            **(meta or {}),
        },
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`accelerate launch -m scoring.vpscore.train CONFIG.json` (or plain `python -m`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m scoring.vpscore.train CONFIG.json", file=sys.stderr)
        return 2
    raw = json.loads(Path(args[0]).read_text())
    data, output = raw.pop("data"), raw.pop("output")
    preferences, loader = read_pairs_parquet(data)
    result = train(
        TrainConfig(**raw), preferences, loader, output, on_log=lambda e: print(json.dumps(e), flush=True)
    )
    print(json.dumps({"step": result.step, "best": result.best}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
