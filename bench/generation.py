"""Generation throughput on CPU with the tiny random Stable Diffusion pipeline.

Prints images per second for batch 1 and batch 8 with one loaded pipeline, and for the naive loop that
loads the pipeline again for every image, so the cost of reloading shows next to the cost of drawing.
The tiny pipeline's images are noise; what it measures is the overhead around the model (loading,
tokenising, scheduling, batching), which is what the worker's cache and batching exist to remove.

    .venv/bin/python bench/generation.py [--images 16] [--steps 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.generation.diffusers_backend import GeneratorSpec, generate_batch, load_pipeline  # noqa: E402
from pipeline.generation.testing import build_tiny_sd_pipeline  # noqa: E402

PROMPTS = [
    "three red circles above a blue square",
    "two green triangles next to a yellow star on a grey background",
    "a purple ring",
    "four blue diamonds below three pink crosses",
]


def _prompts(n: int) -> list[str]:
    return [PROMPTS[i % len(PROMPTS)] for i in range(n)]


def time_reuse(spec: GeneratorSpec, images: int, batch: int) -> float:
    """Seconds to make `images` images in batches of `batch` with one pipeline loaded beforehand."""
    pipe = load_pipeline(spec)
    generate_batch(pipe, spec, _prompts(batch), list(range(batch)))  # warm-up: first-call allocations
    start = time.perf_counter()
    for first in range(0, images, batch):
        count = min(batch, images - first)
        generate_batch(pipe, spec, _prompts(count), list(range(first, first + count)))
    return time.perf_counter() - start


def time_reload(spec: GeneratorSpec, images: int) -> tuple[float, float]:
    """Seconds to make `images` images loading the pipeline for each, and the part spent loading."""
    loading = 0.0
    start = time.perf_counter()
    for i in range(images):
        load_start = time.perf_counter()
        pipe = load_pipeline(spec)
        loading += time.perf_counter() - load_start
        generate_batch(pipe, spec, _prompts(1), [i])
        del pipe
    return time.perf_counter() - start, loading


def main() -> None:
    """Build the tiny pipeline, time the three ways of using it, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="images per measurement")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per image")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; the fastest is shown")
    args = parser.parse_args()

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_sd_pipeline(Path(tmp) / "tiny-sd")
        spec = GeneratorSpec(model=path, num_inference_steps=args.steps, guidance_scale=7.5)
        # The fastest of a few runs: on a shared 2-core machine other processes only ever add time.
        best_of = range(args.repeats)
        rows = [
            ("reuse", 1, min(time_reuse(spec, args.images, 1) for _ in best_of), None),
            ("reuse", 8, min(time_reuse(spec, args.images, 8) for _ in best_of), None),
        ]
        reload_seconds, loading = min(time_reload(spec, args.images) for _ in best_of)
        rows.append(("reload per image", 1, reload_seconds, loading))

    print(
        f"tiny SD pipeline, 64x64, {args.steps} steps, {args.images} images per row, "
        f"best of {args.repeats}, CPU with {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(f"{'mode':<18}{'batch':>6}{'seconds':>10}{'images/s':>10}{'ms/image':>10}{'loading ms/image':>18}")
    for mode, batch, seconds, load in rows:
        load_text = f"{1000 * load / args.images:.1f}" if load is not None else "-"
        print(
            f"{mode:<18}{batch:>6}{seconds:>10.2f}{args.images / seconds:>10.1f}"
            f"{1000 * seconds / args.images:>10.1f}{load_text:>18}"
        )
    naive = rows[2][2]
    print(
        f"speed-up over reload per image: batch 1 {naive / rows[0][2]:.1f}x, batch 8 {naive / rows[1][2]:.1f}x"
    )


if __name__ == "__main__":
    main()
