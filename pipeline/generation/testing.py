"""Tiny random diffusion pipelines built from config objects, for tests and benchmarks.

No model weights can be downloaded on these machines, so tests build a Stable Diffusion pipeline with
random weights and its own CLIP tokenizer, save it with `save_pretrained`, and load it back through the
real loading code by local path. The images it makes are noise, but every code path (tokenizer, text
encoder, UNet, scheduler, VAE, batching, seeding) is the one a real model takes.

torch, transformers and diffusers are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

TINY_IMAGE_SIZE = 64
"""The tiny pipeline's native image size (UNet sample size 32, VAE downscale factor 2)."""

TINY_VOCAB_SIZE = 1000

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"


def _bytes_to_unicode() -> dict[int, str]:
    # The byte-to-printable-character table of GPT-2/CLIP byte-level BPE: every byte gets a visible
    # character so that the BPE vocabulary never holds whitespace or control characters.
    printable = list(range(ord("!"), ord("~") + 1))
    printable += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def clip_vocab_and_merges(vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A synthetic CLIP BPE vocabulary of exactly `vocab_size` entries, laid out like the real one.

    Byte characters first (plain, then word-final "</w>" forms), then tokens made by merges of lowercase
    letters, then the start and end tokens last, as in CLIP (so `vocab_size - 1` is the end token).
    """
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    if vocab_size < len(tokens) + 2:
        raise ValueError(f"a CLIP vocabulary needs at least {len(tokens) + 2} entries, got {vocab_size}")
    known = set(tokens)
    merges: list[tuple[str, str]] = []
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    # Breadth-first over letter strings: "ab", "ab</w>", … then "abc", … until the vocabulary is full.
    # Every merge joins two tokens already in the vocabulary, so the BPE model is well formed.
    frontier = list(letters)
    target = vocab_size - 2
    while len(tokens) < target:
        next_frontier = []
        for stem in frontier:
            for letter in letters:
                for right in (letter, letter + "</w>"):
                    merged = stem + right
                    if merged in known or len(tokens) >= target:
                        continue
                    merges.append((stem, right))
                    tokens.append(merged)
                    known.add(merged)
                    if not right.endswith("</w>"):
                        next_frontier.append(merged)
        frontier = next_frontier
    tokens += [BOS_TOKEN, EOS_TOKEN]
    return {token: i for i, token in enumerate(tokens)}, merges


def write_clip_tokenizer(directory: str | Path, *, vocab_size: int = TINY_VOCAB_SIZE) -> CLIPTokenizer:
    """Write vocab.json and merges.txt for a synthetic CLIP tokenizer into `directory` and load it."""
    from transformers import CLIPTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocab_and_merges(vocab_size)
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_text = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    (directory / "merges.txt").write_text(merges_text, encoding="utf-8")
    # 77 tokens is what every Stable Diffusion text encoder takes.
    (directory / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 77}), encoding="utf-8")
    return CLIPTokenizer.from_pretrained(directory)


def build_sd_pipeline(
    path: str | Path,
    *,
    unet: dict[str, Any],
    vae: dict[str, Any],
    text_encoder: dict[str, Any],
    vocab_size: int,
    seed: int = 0,
) -> str:
    """Build a random-weight StableDiffusionPipeline from config dicts, save it to `path`, return the path."""
    import diffusers
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    path = Path(path)
    # Written where save_pretrained puts the tokenizer anyway, so no stray folder is left behind.
    tokenizer = write_clip_tokenizer(path / "tokenizer", vocab_size=vocab_size)
    text_config = CLIPTextConfig(
        vocab_size=vocab_size,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **text_encoder,
    )
    # Seeded construction: the same call builds the same weights, so stored reference values stay valid.
    torch.manual_seed(seed)
    components = {
        "unet": diffusers.UNet2DConditionModel(**unet),
        "vae": diffusers.AutoencoderKL(**vae),
        "text_encoder": CLIPTextModel(text_config).eval(),
        "tokenizer": tokenizer,
        # Stable Diffusion 1.x ships with this scheduler and these settings.
        "scheduler": diffusers.PNDMScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            skip_prk_steps=True,
            steps_offset=1,
        ),
        "safety_checker": None,
        "feature_extractor": None,
    }
    pipe: Any = diffusers.StableDiffusionPipeline(**components, requires_safety_checker=False)
    pipe.save_pretrained(path)
    return str(path)


def build_tiny_sd_pipeline(path: str | Path, *, seed: int = 0) -> str:
    """Build and save a tiny random Stable Diffusion pipeline (64 px images, a few MB) at `path`."""
    # The component sizes follow diffusers' own tests (get_dummy_components in test_stable_diffusion.py).
    return build_sd_pipeline(
        path,
        unet={
            "block_out_channels": (4, 8),
            "layers_per_block": 1,
            "sample_size": TINY_IMAGE_SIZE // 2,
            "in_channels": 4,
            "out_channels": 4,
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
            "cross_attention_dim": 32,
            "norm_num_groups": 2,
        },
        vae={
            "block_out_channels": (4, 8),
            "in_channels": 3,
            "out_channels": 3,
            "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
            "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
            "latent_channels": 4,
            "norm_num_groups": 2,
            "sample_size": TINY_IMAGE_SIZE,
        },
        text_encoder={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "layer_norm_eps": 1e-5,
        },
        vocab_size=TINY_VOCAB_SIZE,
        seed=seed,
    )
