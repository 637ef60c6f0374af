"""Backbones for VP-Score: BLIP (ImageReward-style, the paper's choice) and CLIP (PickScore / HPS-style).

A backbone turns (prompt tokens, image) into one feature vector per pair of them. Its vision tower is split
in two at the frozen boundary: ``vision_prefix`` (patch embeddings and the frozen lower layers) and
``vision_suffix`` (the trainable upper layers and the final norm). The prefix depends on the image only, so
the trainer computes it once per image and reuses it across epochs and across every pair the image is in
(the frozen-feature cache); ImageReward recomputes it on every step.

Weights load with ``from_pretrained`` from a hub id or a local folder; the tokenizer from the same place.
Images are resized and normalised here (PIL + numpy), so no image processor class (and no torchvision) is
needed; the mean and standard deviation are the CLIP ones that BLIP and CLIP checkpoints were trained with.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
KINDS = ("blip", "clip")
MAX_PROMPT_TOKENS = 77


def _pooled(output: Any) -> torch.Tensor:
    """Transformers 5 returns model outputs from get_*_features; older versions return the tensor."""
    return output.pooler_output if hasattr(output, "pooler_output") else output


class Backbone(nn.Module):
    """Common shape of both backbones: a tokenizer, a split vision tower and a joint feature."""

    kind: str
    feature_dim: int
    image_size: int
    model: Any  # a transformers BLIP or CLIP model

    def __init__(self, model: Any, tokenizer: Any, source: str) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.source = source
        self.frozen_vision_layers = 0
        self.prefix_frozen = False  # the embeddings and lower vision layers take no gradient

    # -- what subclasses provide -----------------------------------------------------------------------
    def vision_layers(self) -> nn.ModuleList:
        raise NotImplementedError

    def text_layers(self) -> nn.ModuleList:
        raise NotImplementedError

    def vision_embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def vision_finish(self, hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def joint(
        self, vision: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------------------
    def freeze(self, fraction: float) -> None:
        """Freeze the embeddings and the lower `fraction` of the vision and text layers (ImageReward: 0.7)."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"freeze fraction must be within [0, 1], got {fraction}")
        for p in self.model.parameters():
            p.requires_grad_(True)
        vision, text = self.vision_layers(), self.text_layers()
        self.frozen_vision_layers = math.floor(len(vision) * fraction)
        self.prefix_frozen = fraction > 0
        frozen_text = math.floor(len(text) * fraction)
        if fraction > 0:
            for module in self.frozen_modules():
                for p in module.parameters():
                    p.requires_grad_(False)
        for layer in list(vision)[: self.frozen_vision_layers] + list(text)[:frozen_text]:
            for p in layer.parameters():
                p.requires_grad_(False)

    def frozen_modules(self) -> list[nn.Module]:
        """Modules frozen whenever anything is: the embeddings (patch, position, token)."""
        raise NotImplementedError

    def vision_prefix(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Embeddings and the frozen lower vision layers: what the feature cache stores per image."""
        hidden = self.vision_embed(pixel_values)
        for layer in list(self.vision_layers())[: self.frozen_vision_layers]:
            hidden = self._run_vision_layer(layer, hidden)
        return hidden

    def vision_suffix(self, hidden: torch.Tensor) -> torch.Tensor:
        for layer in list(self.vision_layers())[self.frozen_vision_layers :]:
            hidden = self._run_vision_layer(layer, hidden)
        return self.vision_finish(hidden)

    def _run_vision_layer(self, layer: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        out = layer(hidden, attention_mask=None) if self.kind == "clip" else layer(hidden)
        return out[0] if isinstance(out, tuple) else out

    def tokenize(
        self, prompts: list[str], device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenizer(
            prompts, padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        return tokens["input_ids"].to(device), tokens["attention_mask"].to(device)

    @property
    def max_tokens(self) -> int:
        return min(MAX_PROMPT_TOKENS, int(getattr(self.text_config, "max_position_embeddings", 512)))

    @property
    def text_config(self) -> Any:
        return self.model.config.text_config

    def pixels(self, images: list[Image.Image]) -> torch.Tensor:
        """Resize (bicubic) to the tower's size, scale to [0, 1] and normalise: a float tensor (N, 3, H, W)."""
        size = self.image_size
        arrays = [
            np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
            for img in images
        ]
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 255.0
        mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        return (batch - mean) / std

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)


class BlipBackbone(Backbone):
    """BLIP retrieval model: the text encoder cross-attends to the image; the feature is its [CLS] token."""

    kind = "blip"

    def __init__(self, model: Any, tokenizer: Any, source: str) -> None:
        super().__init__(model, tokenizer, source)
        self.feature_dim = int(model.config.text_config.hidden_size)
        self.image_size = int(model.config.vision_config.image_size)

    def vision_layers(self) -> nn.ModuleList:
        return self.model.vision_model.encoder.layers

    def text_layers(self) -> nn.ModuleList:
        return self.model.text_encoder.encoder.layer

    def frozen_modules(self) -> list[nn.Module]:
        return [self.model.vision_model.embeddings, self.model.text_encoder.embeddings]

    def vision_embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.vision_model.embeddings(pixel_values)

    def vision_finish(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.vision_model.post_layernorm(hidden)

    def joint(
        self, vision: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        image_mask = torch.ones(vision.shape[:2], dtype=torch.long, device=vision.device)
        out = self.model.text_encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_hidden_states=vision,
            encoder_attention_mask=image_mask,
        )
        return out.last_hidden_state[:, 0, :]


class ClipBackbone(Backbone):
    """CLIP dual encoder: projected image and text embeddings, combined as [img, txt, img * txt]."""

    kind = "clip"

    def __init__(self, model: Any, tokenizer: Any, source: str) -> None:
        super().__init__(model, tokenizer, source)
        self.feature_dim = 3 * int(model.config.projection_dim)
        self.image_size = int(model.config.vision_config.image_size)

    def vision_layers(self) -> nn.ModuleList:
        return self.model.vision_model.encoder.layers

    def text_layers(self) -> nn.ModuleList:
        return self.model.text_model.encoder.layers

    def frozen_modules(self) -> list[nn.Module]:
        return [self.model.vision_model.embeddings, self.model.text_model.embeddings]

    def vision_embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        vision = self.model.vision_model
        return vision.pre_layrnorm(vision.embeddings(pixel_values))

    def vision_finish(self, hidden: torch.Tensor) -> torch.Tensor:
        pooled = self.model.vision_model.post_layernorm(hidden[:, 0, :])
        return self.model.visual_projection(pooled)

    def joint(
        self, vision: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        text = _pooled(self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))
        image = nn.functional.normalize(vision, dim=-1)
        text = nn.functional.normalize(text, dim=-1)
        return torch.cat([image, text, image * text], dim=-1)


def load_backbone(kind: str, source: str | Path) -> Backbone:
    """A backbone from a hub id or a local folder, with its tokenizer, by the real loading code."""
    from transformers import AutoTokenizer, BlipForImageTextRetrieval, CLIPModel

    if kind not in KINDS:
        raise ValueError(f"unknown backbone kind {kind!r}; choose one of {', '.join(KINDS)}")
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    if kind == "blip":
        return BlipBackbone(BlipForImageTextRetrieval.from_pretrained(str(source)), tokenizer, str(source))
    return ClipBackbone(CLIPModel.from_pretrained(str(source)), tokenizer, str(source))


TINY_WORDS = [
    "a",
    "an",
    "the",
    "of",
    "and",
    "with",
    "next",
    "to",
    "on",
    "in",
    "under",
    "above",
    "left",
    "right",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "big",
    "small",
    "red",
    "green",
    "blue",
    "yellow",
    "pink",
    "purple",
    "orange",
    "black",
    "white",
    "grey",
    "circle",
    "circles",
    "square",
    "squares",
    "triangle",
    "triangles",
    "diamond",
    "diamonds",
    "star",
    "stars",
    "cat",
    "dog",
    "tree",
    "house",
    "car",
    "photo",
    "painting",
    "of",
    "blurry",
    "sharp",
]


def build_tiny_backbone(
    kind: str, folder: str | Path, *, image_size: int = 32, hidden: int = 32, seed: int = 0
) -> Path:
    """Save a tiny randomly initialised BLIP or CLIP (and a word-level tokenizer) to `folder`.

    For tests, benches and the demo: nothing is downloaded; the folder loads back with `load_backbone`
    exactly like a hub checkpoint does.
    """
    tower = dict(hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2, intermediate_size=2 * hidden)
    return build_random_backbone(
        kind,
        folder,
        text={**tower, "max_position_embeddings": 32},
        vision={
            **tower,
            "image_size": image_size,
            "patch_size": max(4, image_size // 4),
            "initializer_range": 0.02,  # BLIP's default (1e-10) leaves a random tower blind to the image
        },
        projection_dim=hidden,
        seed=seed,
    )


def build_random_backbone(
    kind: str,
    folder: str | Path,
    *,
    text: dict[str, Any],
    vision: dict[str, Any],
    projection_dim: int,
    seed: int = 0,
) -> Path:
    """Save a randomly initialised BLIP or CLIP of any size (text and vision config keys) to `folder`.

    The tokenizer is word-level over a small vocabulary; the text embedding keeps `text["vocab_size"]`
    rows when given (a released model's size), so the weights have the real model's shape.
    """
    from transformers import BertTokenizer, BlipConfig, BlipForImageTextRetrieval, CLIPConfig, CLIPModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", *sorted(set(TINY_WORDS))]
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    torch.manual_seed(seed)
    text = {"vocab_size": len(vocab), "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, **text}
    model: nn.Module
    if kind == "blip":
        text_config = {**text, "encoder_hidden_size": vision["hidden_size"], "sep_token_id": 2}
        model = BlipForImageTextRetrieval(
            BlipConfig(text_config=text_config, vision_config=vision, projection_dim=projection_dim)
        )
    elif kind == "clip":
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim))
    else:
        raise ValueError(f"unknown backbone kind {kind!r}; choose one of {', '.join(KINDS)}")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
