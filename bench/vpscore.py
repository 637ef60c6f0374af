"""VP-Score on the CPU with a small random BLIP (or CLIP): training pairs/s and scoring images/s, with and
without the frozen-feature cache. The default model is vision-heavy like the real ones (4 vision layers
over 64 patches, 2 text layers over 32 tokens, 75% of the vision tower frozen), so the cache has work to
save; the test suite's tiny model (2 layers, 16 patches) spends most of its time in the text side and
the heads, where the cache changes nothing. Prints CPU time per unit and the load average (the machine is shared:
compare ratios within one run, not absolute figures across runs).

    python bench/vpscore.py                  # BLIP, 64 px, patch 8, freeze 0.75
    python bench/vpscore.py --kind clip --threads 2
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
from scoring.vpscore.backbone import build_random_backbone, load_backbone  # noqa: E402
from scoring.vpscore.model import VPScoreModel  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", choices=["blip", "clip"], default="blip")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--patch", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--vision-layers", type=int, default=4)
    parser.add_argument("--freeze", type=float, default=0.75)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU figures per core).")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    print(f"load average before: {load_average()}; torch threads {torch.get_num_threads()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tower = {"hidden_size": args.hidden, "num_attention_heads": 2, "intermediate_size": 4 * args.hidden}
        folder = build_random_backbone(
            args.kind,
            Path(tmp) / "b",
            text={**tower, "num_hidden_layers": 2, "max_position_embeddings": 32},
            vision={
                **tower,
                "num_hidden_layers": args.vision_layers,
                "image_size": args.image_size,
                "patch_size": args.patch,
                "initializer_range": 0.02,
            },
            projection_dim=args.hidden,
        )
        backbone = load_backbone(args.kind, folder)
    backbone.freeze(args.freeze)
    core = VPScoreModel(backbone, ["fidelity", "aesthetic"])
    images, pairs = synthetic_data(args.images, 2048, size=args.image_size)
    common = dict(batch=args.batch, steps=args.steps, dtype=None, device=device)
    plain = time_training(core, images, pairs, label="train fp32, no cache", cache=False, **common)
    cached = time_training(core, images, pairs, label="train fp32, cache", cache=True, **common)
    print(
        f"\nTraining, {args.kind} {args.image_size} px / patch {args.patch}, {args.vision_layers} vision layers, "
        f"batch {args.batch}, {args.freeze:.0%} frozen"
    )
    print_table([plain, cached], unit="pairs", baseline=plain, peak_tflops=None)
    by_cpu = (plain.cpu_s / plain.units) / (cached.cpu_s / cached.units)
    print(
        f"cache gain: {cached.rate / plain.rate:.2f}x by wall clock, {by_cpu:.2f}x by CPU time per pair "
        f"(the figure to trust on a loaded machine); fill {cached.fill_s:.2f} s once for {len(images)} images"
    )
    scoring = time_scoring(
        core, list(images.values()), label="score fp32, batch 64", batch=64, dtype=None, device=device
    )
    print("\nScoring (PIL in: resize and normalise included)")
    print_table([scoring], unit="images", baseline=None, peak_tflops=None)
    print(f"\nload average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
