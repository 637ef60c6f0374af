"""Small Pick-a-Pic-shaped parquet files for the data set tests and the benchmark (invented content)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image as PILImage

PICKAPIC_SCHEMA = pa.schema(
    [
        ("caption", pa.string()),
        ("jpg_0", pa.binary()),
        ("jpg_1", pa.binary()),
        ("label_0", pa.float64()),
        ("label_1", pa.float64()),
        ("model_0", pa.string()),
        ("model_1", pa.string()),
        ("user_id", pa.int64()),
        ("has_label", pa.bool_()),
        ("image_0_uid", pa.string()),
        ("image_1_uid", pa.string()),
    ]
)


def jpeg(seed: int, size: int = 16) -> bytes:
    """A small JPEG whose colour depends on `seed` (different seeds give different bytes)."""
    buffer = io.BytesIO()
    colour = (seed * 37 % 256, seed * 91 % 256, (seed // 7) * 53 % 256)
    PILImage.new("RGB", (size, size), colour).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def pickapic_row(
    caption: str, img_0: int, img_1: int, label_0: float, user: int, **extra: Any
) -> dict[str, Any]:
    row = {
        "caption": caption,
        "jpg_0": jpeg(img_0),
        "jpg_1": jpeg(img_1),
        "label_0": label_0,
        "label_1": 1.0 - label_0,
        "model_0": f"model-{img_0 % 3}",
        "model_1": f"model-{img_1 % 3}",
        "user_id": user,
        "has_label": True,
        "image_0_uid": f"uid-{img_0}",
        "image_1_uid": f"uid-{img_1}",
    }
    row.update(extra)
    return row


def write_parquet(
    path: Path, rows: list[dict[str, Any]], schema: pa.Schema | None = None, **kwargs: Any
) -> Path:
    schema = schema or PICKAPIC_SCHEMA
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, path, **kwargs)
    return path


def sample_rows() -> list[dict[str, Any]]:
    """Three prompts, three raters; image 2 appears in two pairs; one tie; one unlabelled row."""
    return [
        pickapic_row("a red fox in snow", 1, 2, 1.0, user=7),
        pickapic_row("a red fox in snow", 1, 2, 0.0, user=8),
        pickapic_row("a red fox in snow", 1, 2, 1.0, user=9),
        pickapic_row("a red fox in snow", 2, 3, 0.5, user=7),
        pickapic_row("a glass teapot", 4, 5, 0.0, user=8),
        pickapic_row("a lighthouse at dusk", 6, 7, 1.0, user=9, has_label=False),
    ]
