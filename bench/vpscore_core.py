"""Shared timing code of bench/vpscore.py (CPU, tiny) and bench/vpscore_gpu.py (CUDA, BLIP-large-sized).

Times the kit's own pieces (FeatureSource, pair_logits, pairwise_loss, VPScore.score) on synthetic images,
so the figures are those of the training loop and the scorer, without the job, the database or storage.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image, ImageDraw

from scoring.vpscore.data import Preference
from scoring.vpscore.model import VPScore, VPScoreModel
from scoring.vpscore.train import FeatureSource, pair_logits, pairwise_loss

PROMPTS = ["a red square on grey", "two blue circles", "a green triangle", "three yellow stars"]


def load_average() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def synthetic_data(
    n_images: int, n_pairs: int, *, size: int, seed: int = 0
) -> tuple[dict[str, Image.Image], list[Preference]]:
    """Images (noise with or without a red square) and pairs between them, two aspects."""
    rng = random.Random(seed)
    images: dict[str, Image.Image] = {}
    for k in range(n_images):
        shade = rng.randint(80, 180)
        image = Image.new("RGB", (size, size), (shade, shade, shade))
        if k % 2 == 0:
            x, y = rng.randint(0, size // 2), rng.randint(0, size // 2)
            ImageDraw.Draw(image).rectangle([x, y, x + size // 3, y + size // 3], fill=(220, 20, 20))
        images[f"img-{k}"] = image
    keys = list(images)
    pairs = []
    for k in range(n_pairs):
        a, b = rng.sample(keys, 2)
        target = 1.0 if int(a.split("-")[1]) % 2 == 0 else 0.0
        pairs.append(Preference(PROMPTS[k % len(PROMPTS)], a, b, ("fidelity", "aesthetic")[k % 2], target))
    return images, pairs


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    label: str
    units: int  # pairs or images
    wall_s: float
    cpu_s: float
    flops: float  # executed FLOPs per unit (FlopCounterMode on one batch), 0 when not counted
    fill_s: float = 0.0  # the frozen-feature cache's one-off fill, not in wall_s
    peak_gib: float = 0.0

    @property
    def rate(self) -> float:
        return self.units / self.wall_s if self.wall_s else float("nan")


@contextlib.contextmanager
def measured(device: torch.device) -> Iterator[dict[str, float]]:
    synchronise(device)
    out: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    yield out
    synchronise(device)
    out["wall"] = time.perf_counter() - wall
    out["cpu"] = time.process_time() - cpu


def _batches(pairs: list[Preference], batch: int, steps: int) -> Iterator[list[Preference]]:
    k = 0
    for _ in range(steps):
        chunk = [pairs[(k + i) % len(pairs)] for i in range(batch)]
        k += batch
        yield chunk


def count_flops(fn: Any) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return float(counter.get_total_flops())


def time_training(
    core: VPScoreModel,
    images: dict[str, Image.Image],
    pairs: list[Preference],
    *,
    label: str,
    batch: int,
    steps: int,
    dtype: torch.dtype | None,
    cache: bool,
    device: torch.device,
    warmup: int = 2,
) -> Timing:
    """`steps` optimiser steps of `batch` pairs (after `warmup` untimed ones); the cache fill timed apart."""
    core.train()
    features = FeatureSource(core, images.__getitem__, device, cache=cache and core.backbone.prefix_frozen)
    for key in images:  # preprocessing is the same for every mode: done before timing
        features._pixels(key)
    fill = 0.0
    if features.cache:
        with measured(device) as m, autocast(device, dtype):
            features(list(images))
        fill = m["wall"]
    optimizer = torch.optim.AdamW(core.trainable_parameters(), lr=1e-6)

    def step(chunk: list[Preference]) -> None:
        with autocast(device, dtype):
            loss = pairwise_loss(pair_logits(core, core, features, chunk, device), chunk, core.aspects)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for chunk in _batches(pairs, batch, warmup):
        step(chunk)
    flops = count_flops(lambda: step(pairs[:batch])) / batch
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with measured(device) as m:
        for chunk in _batches(pairs, batch, steps):
            step(chunk)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    return Timing(label, batch * steps, m["wall"], m["cpu"], flops, fill, peak)


def time_scoring(
    core: VPScoreModel,
    images: list[Image.Image],
    *,
    label: str,
    batch: int,
    dtype: torch.dtype | None,
    device: torch.device,
    repeats: int = 1,
) -> Timing:
    """VPScore.score on the images (PIL in, normalised scores out: preprocessing included)."""
    scorer = VPScore(core, device=str(device))
    with autocast(device, dtype):
        scorer.score(PROMPTS[0], images[:batch], batch_size=batch)  # warm-up
        flops = count_flops(lambda: scorer.score(PROMPTS[0], images[:batch], batch_size=batch)) / batch
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with measured(device) as m:
            for _ in range(repeats):
                scorer.score(PROMPTS[0], images, batch_size=batch)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    return Timing(label, len(images) * repeats, m["wall"], m["cpu"], flops, 0.0, peak)


def print_table(rows: list[Timing], *, unit: str, baseline: Timing | None, peak_tflops: float | None) -> None:
    head = f"{'mode':<34} {unit + '/s':>10} {'vs base':>8} {'CPU ms/' + unit[:-1]:>12} {'GFLOP/' + unit[:-1]:>12}"
    head += f" {'cache fill s':>12} {'peak GiB':>9}" + (f" {'MFU':>7}" if peak_tflops else "")
    print(head)
    for row in rows:
        ratio = f"{row.rate / baseline.rate:.2f}x" if baseline else "–"
        line = (
            f"{row.label:<34} {row.rate:>10.1f} {ratio:>8} {1000 * row.cpu_s / row.units:>12.2f} "
            f"{row.flops / 1e9:>12.3f} {row.fill_s:>12.2f} {row.peak_gib:>9.2f}"
        )
        if peak_tflops:
            line += f" {row.rate * row.flops / (peak_tflops * 1e12):>6.1%}"
        print(line, flush=True)
