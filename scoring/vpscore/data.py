"""Training data for VP-Score: preferences (prompt, image A, image B, aspect, target), split by prompt.

A preference's ``target`` is the probability that image A is preferred: 1.0 (A won), 0.0 (B won) or 0.5 (a
tie, used as a soft target when ties are kept). Images are named by a key (a path, a storage name, a sha256)
and opened by a loader the caller gives, so the same trainer reads the app's storage, a folder or bytes
from a parquet file.

``read_pairs_parquet`` reads the pairwise parquet the app exports for Diffusion-DPO / Pick-a-Pic tooling
(``caption``, ``jpg_0``, ``jpg_1`` as bytes or paths, ``label_0``, optional ``aspect``), in record batches.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ImageLoader = Callable[[str], Image.Image]
DEFAULT_ASPECT = "overall"


@dataclass(frozen=True)
class Preference:
    prompt: str
    image_a: str
    image_b: str
    aspect: str
    target: float
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.target not in (0.0, 0.5, 1.0):
            raise ValueError(f"a preference's target is 1 (A), 0 (B) or 0.5 (tie), got {self.target}")


def drop_ties(preferences: Iterable[Preference]) -> list[Preference]:
    return [p for p in preferences if p.target != 0.5]


def split_by_prompt(
    preferences: Sequence[Preference], *, val_fraction: float, seed: int
) -> tuple[list[Preference], list[Preference]]:
    """Train and validation sets with no prompt in both; the prompts are shuffled with `seed`."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be within [0, 1), got {val_fraction}")
    prompts = sorted({p.prompt for p in preferences})
    random.Random(seed).shuffle(prompts)
    n_val = round(len(prompts) * val_fraction)
    if val_fraction > 0 and len(prompts) > 1:
        n_val = max(1, min(n_val, len(prompts) - 1))
    held_out = set(prompts[:n_val])
    train = [p for p in preferences if p.prompt not in held_out]
    val = [p for p in preferences if p.prompt in held_out]
    return train, val


def snapshot(preferences: Sequence[Preference]) -> dict[str, object]:
    """What a checkpoint records about its data: counts per aspect and a hash of the rows in order."""
    digest = hashlib.sha256()
    per_aspect: dict[str, int] = {}
    for p in preferences:
        digest.update(f"{p.prompt}\x00{p.image_a}\x00{p.image_b}\x00{p.aspect}\x00{p.target}\n".encode())
        per_aspect[p.aspect] = per_aspect.get(p.aspect, 0) + 1
    return {"n": len(preferences), "per_aspect": per_aspect, "sha256": digest.hexdigest()}


def read_pairs_parquet(
    path: str | Path, *, root: str | Path | None = None
) -> tuple[list[Preference], ImageLoader]:
    """Preferences and an image loader from a pairwise parquet (bytes or paths in jpg_0 / jpg_1).

    Paths are read relative to `root` (default: the parquet's folder) and may not leave it.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    base = Path(root or path.parent).resolve()
    blobs: dict[str, bytes] = {}
    preferences: list[Preference] = []
    table = pq.ParquetFile(path)
    missing = {"caption", "jpg_0", "jpg_1", "label_0"} - set(table.schema_arrow.names)
    if missing:
        raise ValueError(f"{path.name}: missing column(s) {', '.join(sorted(missing))}")
    for batch in table.iter_batches(batch_size=4096):
        rows = batch.to_pydict()
        aspects = rows.get("aspect") or [DEFAULT_ASPECT] * batch.num_rows
        for caption, first, second, label, aspect in zip(
            rows["caption"], rows["jpg_0"], rows["jpg_1"], rows["label_0"], aspects, strict=True
        ):
            keys = []
            for value in (first, second):
                if isinstance(value, bytes):
                    key = "sha256:" + hashlib.sha256(value).hexdigest()
                    blobs[key] = value
                else:
                    resolved = (base / str(value)).resolve()
                    if not resolved.is_relative_to(base):
                        raise ValueError(f"{path.name}: image path {value!r} leaves {base}")
                    key = str(resolved)
                keys.append(key)
            preferences.append(
                Preference(str(caption), keys[0], keys[1], str(aspect or DEFAULT_ASPECT), float(label))
            )

    def load_image(key: str) -> Image.Image:
        data = blobs.get(key)
        image = Image.open(io.BytesIO(data) if data is not None else key)
        image.load()
        return image

    return preferences, load_image
