"""The VP-Score model: a backbone, one MLP head per aspect plus an overall head, and score normalisation.

Checkpoint folder layout (``save`` / ``load``)::

    backbone/            the backbone's save_pretrained folder and its tokenizer
    heads.safetensors    every head's weights, keyed "<aspect>.<layer>"
    vpscore.json         kind, aspects, normalisation (mean, std per head), training config, data snapshot,
                         metrics and package versions

A score is (raw − mean) / std with mean and std measured over the training images, so 0 is "average".
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from .backbone import Backbone, load_backbone

OVERALL = "overall"
FORMAT_VERSION = 1


class RewardHead(nn.Module):
    """ImageReward's head: d → 1024 → 128 → 64 → 16 → 1, dropout 0.2 / 0.2 / 0.1, linear throughout."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_dim, 1024),
            nn.Dropout(0.2),
            nn.Linear(1024, 128),
            nn.Dropout(0.2),
            nn.Linear(128, 64),
            nn.Dropout(0.1),
            nn.Linear(64, 16),
            nn.Linear(16, 1),
        )
        for module in self.layers:
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=1.0 / (module.in_features + 1))
                nn.init.zeros_(module.bias)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.layers(feature).squeeze(-1)


@dataclass
class Normalisation:
    """Per-head mean and standard deviation of raw scores over the training images."""

    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)

    def apply(self, head: str, raw: torch.Tensor) -> torch.Tensor:
        return (raw - self.mean.get(head, 0.0)) / (self.std.get(head, 1.0) or 1.0)


class VPScoreModel(nn.Module):
    """Backbone + heads. `forward` gives raw scores per head for (prompt tokens, vision prefix) rows."""

    def __init__(self, backbone: Backbone, aspects: Sequence[str]) -> None:
        super().__init__()
        if not aspects:
            raise ValueError("a VP-Score model needs at least one aspect")
        self.backbone = backbone
        self.aspects = [a for a in aspects if a != OVERALL]
        self.heads = nn.ModuleDict({name: RewardHead(backbone.feature_dim) for name in self.head_names})
        self.normalisation = Normalisation()

    @property
    def head_names(self) -> list[str]:
        return [*self.aspects, OVERALL]

    def features(
        self, prefix: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        return self.backbone.joint(self.backbone.vision_suffix(prefix), input_ids, attention_mask)

    def forward(
        self, prefix: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        feature = self.features(prefix, input_ids, attention_mask)
        return {name: head(feature) for name, head in self.heads.items()}

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # -- checkpoints -------------------------------------------------------------------------------------
    def save(self, folder: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.backbone.save(folder / "backbone")
        tensors = {
            f"{name}.{key}": value.detach().cpu().contiguous()
            for name, head in self.heads.items()
            for key, value in head.state_dict().items()
        }
        save_file(tensors, str(folder / "heads.safetensors"))
        info = {
            "format": FORMAT_VERSION,
            "kind": self.backbone.kind,
            "source": self.backbone.source,
            "aspects": self.aspects,
            "frozen_vision_layers": self.backbone.frozen_vision_layers,
            "normalisation": {"mean": self.normalisation.mean, "std": self.normalisation.std},
            "versions": versions(),
            **(meta or {}),
        }
        (folder / "vpscore.json").write_text(json.dumps(info, indent=2, sort_keys=True, default=str))
        return folder

    def load_heads(self, folder: Path) -> None:
        tensors = load_file(str(folder / "heads.safetensors"))
        for name, head in self.heads.items():
            head.load_state_dict(
                {k.split(".", 1)[1]: v for k, v in tensors.items() if k.split(".", 1)[0] == name}
            )


def versions() -> dict[str, str]:
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


def read_info(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "vpscore.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a VP-Score checkpoint (no vpscore.json)")
    info: dict[str, Any] = json.loads(path.read_text())
    return info


def load_model(folder: str | Path) -> VPScoreModel:
    """The model of a checkpoint folder, in eval mode."""
    folder = Path(folder)
    info = read_info(folder)
    backbone = load_backbone(info["kind"], folder / "backbone")
    backbone.frozen_vision_layers = int(info.get("frozen_vision_layers", 0))
    backbone.prefix_frozen = True
    model = VPScoreModel(backbone, info["aspects"])
    model.load_heads(folder)
    norm = info.get("normalisation", {})
    model.normalisation = Normalisation(mean=dict(norm.get("mean", {})), std=dict(norm.get("std", {})))
    model.backbone.source = str(info.get("source", folder))
    return model.eval()


class VPScore:
    """Scoring with a trained checkpoint: `score` and `prefer`; each image is encoded once per call."""

    def __init__(
        self, model: VPScoreModel, *, info: dict[str, Any] | None = None, device: str = "cpu"
    ) -> None:
        self.model = model.to(device).eval()
        self.info = info or {}
        self.device = device

    @property
    def aspects(self) -> list[str]:
        return self.model.head_names

    @property
    def tie_margin(self) -> dict[str, float]:
        return dict(self.info.get("tie_margin", {}))

    @torch.no_grad()
    def score(
        self,
        prompt: str,
        images: Sequence[Image.Image],
        aspects: Iterable[str] | None = None,
        *,
        batch_size: int = 32,
    ) -> dict[str, list[float]]:
        """Normalised scores per aspect (and "overall") for each image, in order."""
        heads = list(aspects) if aspects is not None else self.model.head_names
        unknown = [a for a in heads if a not in self.model.heads]
        if unknown:
            raise ValueError(
                f"this model has no head for {', '.join(unknown)}; it has {', '.join(self.model.head_names)}"
            )
        out: dict[str, list[float]] = {a: [] for a in heads}
        backbone = self.model.backbone
        for start in range(0, len(images), batch_size):
            chunk = list(images[start : start + batch_size])
            pixels = backbone.pixels(chunk).to(self.device)
            ids, mask = backbone.tokenize([prompt] * len(chunk), self.device)
            raw = self.model(backbone.vision_prefix(pixels), ids, mask)
            for a in heads:
                out[a].extend(self.model.normalisation.apply(a, raw[a].float()).cpu().tolist())
        return out

    def prefer(
        self, prompt: str, image_a: Image.Image, image_b: Image.Image, aspects: Iterable[str] | None = None
    ) -> dict[str, tuple[float, str]]:
        """Per aspect: P(image A preferred) = σ(s_a − s_b) and the choice ("A", "B" or "tie" within the margin)."""
        scores = self.score(prompt, [image_a, image_b], aspects)
        margins = self.tie_margin
        result: dict[str, tuple[float, str]] = {}
        for aspect, (a, b) in scores.items():
            result[aspect] = (
                float(torch.sigmoid(torch.tensor(a - b))),
                choice_from_difference(a - b, margins.get(aspect, 0.0)),
            )
        return result


def choice_from_difference(difference: float, margin: float) -> str:
    if abs(difference) <= margin:
        return "tie"
    return "A" if difference > 0 else "B"


def load(path: str | Path, *, device: str = "cpu") -> VPScore:
    """A trained VP-Score from its checkpoint folder."""
    return VPScore(load_model(path), info=read_info(path), device=device)
