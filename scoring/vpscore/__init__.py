"""VP-Score: reward models trained on preference labels (plain torch + transformers; no Django).

Importable in a notebook or on a GPU box. Owns the model (`model`: backbone + one head per aspect + an
overall head, normalisation, checkpoint folders), the backbones (`backbone`: BLIP ImageReward-style and
CLIP), the data (`data`: preferences, the prompt split, the pairwise parquet) and the training loop
(`train`, on Hugging Face accelerate). May import torch, transformers, accelerate, safetensors, numpy,
PIL and pyarrow; never Django, Celery or the app (an import-linter contract checks it).

    from scoring.vpscore import load
    vp = load("path/to/checkpoint")
    vp.score("a red square", [image])        # {aspect: [score, ...]}
    vp.prefer("a red square", img_a, img_b)  # {aspect: (p_a, "A" | "B" | "tie")}
"""

from .model import VPScore, load

__all__ = ["VPScore", "load"]
