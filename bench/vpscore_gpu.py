"""VP-Score training and scoring throughput on a CUDA GPU, with a BLIP-large-sized model of random weights.

Builds ImageReward's backbone shape from config objects (BLIP ViT-L/16 vision tower at 224 px, a BERT-base
text encoder cross-attending to it, released vocabulary size) and the VP-Score heads, then prints, for a
70% frozen backbone:

- training pairs/s: fp32 one pair per step (ImageReward's loop: the frozen lower part recomputed every
  step) vs bf16 batched 32 and 64 vs bf16 batched with the frozen-feature cache (the frozen part computed
  once per image; its one-off fill is printed apart);
- scoring images/s: VPScore.score in fp32 and bf16, batch 64, PIL images in (preprocessing included);
- CPU ms per unit, executed GFLOP per unit (torch's FlopCounterMode on one batch), peak GiB and model FLOPs
  utilisation against --peak-tflops (989: H100 SXM dense bf16).

Random weights do every layer's work, so the timings are those of the real model at the same size.

    python bench/vpscore_gpu.py                    # on a CUDA machine
    python bench/vpscore_gpu.py --device cpu --tiny  # smoke test of the script's logic (tiny model)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.vpscore_core import (  # noqa: E402
    load_average,
    print_table,
    synthetic_data,
    time_scoring,
    time_training,
)
from scoring.vpscore.backbone import build_random_backbone, build_tiny_backbone, load_backbone  # noqa: E402
from scoring.vpscore.model import VPScoreModel  # noqa: E402

# BLIP-large (ImageReward's backbone): ViT-L/16 vision tower, BERT-base text encoder with cross-attention.
BLIP_LARGE_VISION = {
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "patch_size": 16,
    "image_size": 224,
    "initializer_range": 0.02,
}
BLIP_LARGE_TEXT = {
    "vocab_size": 30524,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="A tiny model at 32 px (smoke test).")
    parser.add_argument("--steps", type=int, default=20, help="Timed optimiser steps per batched mode.")
    parser.add_argument(
        "--per-pair-steps", type=int, default=64, help="Timed steps of the fp32 per-pair loop."
    )
    parser.add_argument("--freeze", type=float, default=0.7)
    parser.add_argument(
        "--images", type=int, default=512, help="Distinct images (the cache fills once each)."
    )
    parser.add_argument("--score-images", type=int, default=1024)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="The GPU's dense bf16 peak.")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            "bench/vpscore_gpu.py needs a CUDA GPU and none is visible here (torch.cuda.is_available() is "
            "False). Run it on a GPU machine, or check its logic with: "
            "python bench/vpscore_gpu.py --device cpu --tiny",
            file=sys.stderr,
        )
        return 2
    bf16 = torch.bfloat16
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}")
    print(f"load average before: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "backbone"
        if args.tiny:
            build_tiny_backbone("blip", folder, image_size=32)
            size, steps, per_pair, n_images, n_score = 32, 4, 8, 64, 128
        else:
            build_random_backbone(
                "blip", folder, text=BLIP_LARGE_TEXT, vision=BLIP_LARGE_VISION, projection_dim=256
            )
            size, steps, per_pair = 224, args.steps, args.per_pair_steps
            n_images, n_score = args.images, args.score_images
        backbone = load_backbone("blip", folder)
    backbone.freeze(args.freeze)
    core = VPScoreModel(backbone, ["fidelity", "aesthetic"]).to(device)
    n_params = sum(p.numel() for p in core.parameters())
    n_trainable = sum(p.numel() for p in core.trainable_parameters())
    print(
        f"model: BLIP{' (tiny)' if args.tiny else '-large-sized'}, {n_params / 1e6:.1f} M parameters, "
        f"{n_trainable / 1e6:.1f} M trainable ({args.freeze:.0%} of the layers frozen), {size} px",
        flush=True,
    )
    images, pairs = synthetic_data(n_images, 4096, size=size)
    peak = None if device.type == "cpu" else args.peak_tflops

    base = time_training(
        core, images, pairs, label="fp32, 1 pair/step", batch=1, steps=per_pair, dtype=None, cache=False,
        device=device,
    )  # fmt: skip
    rows = [base]
    for batch in (32, 64):
        rows.append(
            time_training(
                core,
                images,
                pairs,
                label=f"bf16, {batch} pairs/step",
                batch=batch,
                steps=steps,
                dtype=bf16,
                cache=False,
                device=device,
            )  # fmt: skip
        )
        rows.append(
            time_training(
                core,
                images,
                pairs,
                label=f"bf16, {batch} pairs/step + cache",
                batch=batch,
                steps=steps,
                dtype=bf16,
                cache=True,
                device=device,
            )  # fmt: skip
        )
    print("\nTraining (pairs/s; 'vs base' against the fp32 per-pair loop)")
    print_table(rows, unit="pairs", baseline=base, peak_tflops=peak)
    for batch in (32, 64):
        plain = next(r for r in rows if r.label == f"bf16, {batch} pairs/step")
        cached = next(r for r in rows if r.label == f"bf16, {batch} pairs/step + cache")
        print(
            f"cache gain at batch {batch}: {cached.rate / plain.rate:.2f}x (fill {cached.fill_s:.2f} s once)"
        )

    score_images = [images[k] for k in list(images)] * (n_score // len(images) + 1)
    scoring = [
        time_scoring(core, score_images[:n_score], label="score fp32, batch 64", batch=64, dtype=None,
                     device=device),
        time_scoring(core, score_images[:n_score], label="score bf16, batch 64", batch=64, dtype=bf16,
                     device=device),
    ]  # fmt: skip
    print("\nScoring (images/s, PIL in: resize and normalise included)")
    print_table(scoring, unit="images", baseline=scoring[0], peak_tflops=peak)
    print(f"\nload average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
