"""Generation throughput on a CUDA GPU with an SD-1.5-sized pipeline of random weights.

Builds a Stable Diffusion 1.5-shaped pipeline (UNet, VAE and CLIP ViT-L/14 text encoder at their
released sizes, a synthetic 49408-token CLIP tokenizer) from config objects, saves it to local disk,
then prints images per second and peak GPU memory for:

- fp16 with one loaded pipeline, batch 1, 4 and 8 (what a generation worker does);
- the naive loop: fp32, batch 1, the pipeline loaded again from disk for every image;

and the speed-up of the first over the second. Random weights draw noise, but every layer does the
work of the real model, so the timings are those of SD 1.5 at the same size and step count.

    python bench/generation_gpu.py                 # 512 px, 20 steps: 76 s on an H200, build included
    python bench/generation_gpu.py --quick         # fewer steps and images
    python bench/generation_gpu.py --device cpu --tiny   # smoke test of the script itself
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.generation.diffusers_backend import GeneratorSpec, generate_batch, load_pipeline  # noqa: E402
from pipeline.generation.testing import build_sd_pipeline, build_tiny_sd_pipeline  # noqa: E402

PROMPTS = [
    "three red circles above a blue square",
    "two green triangles next to a yellow star on a grey background",
    "a purple ring",
    "four blue diamonds below three pink crosses",
]

# The released Stable Diffusion 1.5 component configs (unet/, vae/, text_encoder/ config.json).
SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "down_block_types": (
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
}
SD15_VAE = {
    "sample_size": 512,
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "latent_channels": 4,
    "norm_num_groups": 32,
}
SD15_TEXT_ENCODER = {  # CLIP ViT-L/14 text tower
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
}
SD15_VOCAB_SIZE = 49408


def build_sd15_sized_pipeline(path: Path) -> str:
    """Build and save a random-weight pipeline with Stable Diffusion 1.5's shapes."""
    return build_sd_pipeline(
        path, unet=SD15_UNET, vae=SD15_VAE, text_encoder=SD15_TEXT_ENCODER, vocab_size=SD15_VOCAB_SIZE
    )


class Meter:
    """Wall time and peak memory of a block, synchronising the GPU at both ends."""

    def __init__(self, device: str) -> None:
        import torch

        self.torch, self.cuda = torch, device.startswith("cuda")

    def __enter__(self) -> Meter:
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()
            self.peak_gib: float | None = self.torch.cuda.max_memory_allocated() / 2**30
        else:
            self.peak_gib = None
        self.seconds = time.perf_counter() - self.start


def _free(device: str) -> None:
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def _prompts(n: int) -> list[str]:
    return [PROMPTS[i % len(PROMPTS)] for i in range(n)]


def run_reuse(spec: GeneratorSpec, batches: list[int], images: int) -> list[dict[str, Any]]:
    """One loaded pipeline; per batch size a warm-up call, then `images` images (at least one batch)."""
    pipe = load_pipeline(spec)
    rows = []
    for batch in batches:
        generate_batch(pipe, spec, _prompts(batch), list(range(batch)))  # warm-up: kernels, allocator
        total = max(images, batch)
        with Meter(spec.device) as meter:
            for first in range(0, total, batch):
                count = min(batch, total - first)
                generate_batch(pipe, spec, _prompts(count), list(range(first, first + count)))
        rows.append(_row(f"reuse {spec.dtype}", batch, total, meter))
        print(_format(rows[-1]), flush=True)
    del pipe
    _free(spec.device)
    return rows


def run_naive(spec: GeneratorSpec, images: int) -> dict[str, Any]:
    """Load the pipeline from disk for every image, make it at batch 1, drop the pipeline."""
    loading = 0.0
    with Meter(spec.device) as meter:
        for i in range(images):
            start = time.perf_counter()
            pipe = load_pipeline(spec)
            loading += time.perf_counter() - start
            generate_batch(pipe, spec, _prompts(1), [i])
            del pipe
            _free(spec.device)
    row = _row(f"reload {spec.dtype}", 1, images, meter)
    row["loading_s_per_image"] = loading / images
    print(_format(row), flush=True)
    return row


def _row(mode: str, batch: int, images: int, meter: Meter) -> dict[str, Any]:
    return {
        "mode": mode,
        "batch": batch,
        "images": images,
        "seconds": meter.seconds,
        "images_per_s": images / meter.seconds,
        "peak_gib": meter.peak_gib,
    }


HEADER = (
    f"{'mode':<16}{'batch':>6}{'images':>7}{'seconds':>9}{'images/s':>10}{'peak GiB':>10}{'load s/img':>11}"
)


def _format(row: dict[str, Any]) -> str:
    peak = f"{row['peak_gib']:.2f}" if row["peak_gib"] is not None else "n/a"
    load = f"{row['loading_s_per_image']:.2f}" if "loading_s_per_image" in row else "-"
    return (
        f"{row['mode']:<16}{row['batch']:>6}{row['images']:>7}{row['seconds']:>9.2f}"
        f"{row['images_per_s']:>10.2f}{peak:>10}{load:>11}"
    )


def main() -> None:
    """Build the pipeline, time reuse at batch 1/4/8 and the naive reload loop, print the speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--steps", type=int, default=20, help="denoising steps per image (default 20)")
    parser.add_argument("--size", type=int, default=None, help="image side in pixels (512; 64 with --tiny)")
    parser.add_argument("--images", type=int, default=8, help="images per reuse measurement (default 8)")
    parser.add_argument("--naive-images", type=int, default=3, help="images in the reload loop (default 3)")
    parser.add_argument("--quick", action="store_true", help="10 steps, 4 reuse images, 2 reload images")
    parser.add_argument("--tiny", action="store_true", help="tiny pipeline instead of SD-1.5-sized")
    parser.add_argument(
        "--dtype", default=None, help="dtype of the reuse rows (float16 on cuda, else float32)"
    )
    parser.add_argument("--workdir", default=None, help="where to save the pipeline (default: a temp dir)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.images, args.naive_images = 10, 4, 2
    size = args.size or (64 if args.tiny else 512)
    # fp16 convolutions are slow or missing on CPUs: the CPU smoke test compares fp32 with fp32.
    dtype = args.dtype or ("float16" if args.device.startswith("cuda") else "float32")

    import diffusers
    import torch
    import transformers

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --device cpu --tiny for a smoke test")
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    # Random weights can push the fp16 VAE to inf/NaN; the cast warning is about noise pixels, not timing.
    warnings.filterwarnings("ignore", message="invalid value encountered in cast")
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{device_name}, torch {torch.__version__}, diffusers {diffusers.__version__}", flush=True)

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="sd-bench-"))
    try:
        start = time.perf_counter()
        model_dir = workdir / ("tiny-sd" if args.tiny else "sd15-random")
        path = build_tiny_sd_pipeline(model_dir) if args.tiny else build_sd15_sized_pipeline(model_dir)
        print(
            f"built and saved {'tiny' if args.tiny else 'SD-1.5-sized'} pipeline in "
            f"{time.perf_counter() - start:.1f}s at {path}",
            flush=True,
        )

        def spec(dtype_name: str) -> GeneratorSpec:
            return GeneratorSpec(
                model=path,
                num_inference_steps=args.steps,
                guidance_scale=7.5,
                width=size,
                height=size,
                dtype=dtype_name,
                device=args.device,
            )

        print(f"{size}x{size} px, {args.steps} steps, classifier-free guidance 7.5", flush=True)
        print(HEADER, flush=True)
        reuse = run_reuse(spec(dtype), [1, 4, 8], args.images)
        naive = run_naive(spec("float32"), args.naive_images)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    best = max(reuse, key=lambda row: row["images_per_s"])
    print()
    print(
        f"speed-up of reuse {dtype} batch {best['batch']} over naive reload fp32 batch 1: "
        f"{best['images_per_s'] / naive['images_per_s']:.1f}x"
    )
    print(
        f"speed-up of reuse {dtype} batch 1 over naive reload fp32 batch 1: "
        f"{reuse[0]['images_per_s'] / naive['images_per_s']:.1f}x"
    )


if __name__ == "__main__":
    main()
