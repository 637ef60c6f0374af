"""Pick-a-Pic parquet shards in, Diffusion-DPO pairwise parquet out.

Pick-a-Pic (v1/v2) has one row per pair: ``caption``, ``jpg_0``/``jpg_1`` (encoded image bytes),
``label_0``/``label_1`` (1.0/0.0 for a winner, 0.5/0.5 for a tie), and optionally ``model_0``/``model_1``,
``user_id``, ``has_label``, ``image_0_uid``/``image_1_uid``. Our own DPO export adds ``aspect`` and
``label_source`` and is read back by the same reader, so an export imports again unchanged.

Reading streams record batches; each batch is checked (types, label values) and turned into
:class:`PickRow` records. Nothing here decodes images: the caller checks them with the app's image
ingestion service.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.datasets.errors import DatasetError

REQUIRED = ("caption", "jpg_0", "jpg_1", "label_0", "label_1")
OPTIONAL_STRINGS = ("model_0", "model_1", "image_0_uid", "image_1_uid", "aspect", "label_source")
TIE = 0.5


@dataclass(frozen=True)
class PickRow:
    """One labelled pair of a Pick-a-Pic-shaped file; `row` is 1-based in the file."""

    row: int
    caption: str
    jpg_0: bytes
    jpg_1: bytes
    label_0: float
    model_0: str
    model_1: str
    user_id: str
    uid_0: str
    uid_1: str
    aspect: str
    label_source: str

    @property
    def choice(self) -> str:
        """ "0", "1" or "tie": which side won."""
        if self.label_0 == TIE:
            return "tie"
        return "0" if self.label_0 == 1.0 else "1"


def _is_binary(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind)
    )


def _is_string(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_floating(kind) or pa.types.is_integer(kind))


def _open(path: str | Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DatasetError(
            f"{Path(path).name} is not a readable parquet file (truncated or damaged): {exc}"
        ) from exc


def check_schema(schema: pa.Schema) -> None:
    """Raise DatasetError naming the first missing column or column of the wrong type."""
    names = set(schema.names)
    for column in REQUIRED:
        if column not in names:
            raise DatasetError(
                f"the column is missing (found: {', '.join(sorted(names)) or 'none'})", field=column
            )
    checks: list[tuple[str, Any, str]] = [
        ("caption", _is_string, "text"),
        ("jpg_0", _is_binary, "encoded image bytes"),
        ("jpg_1", _is_binary, "encoded image bytes"),
        ("label_0", _is_number, "a number"),
        ("label_1", _is_number, "a number"),
        *((c, _is_string, "text") for c in OPTIONAL_STRINGS if c in names),
    ]
    if "user_id" in names:
        checks.append(("user_id", lambda t: _is_number(t) or _is_string(t), "a number or text"))
    if "has_label" in names:
        checks.append(("has_label", pa.types.is_boolean, "true/false"))
    for column, test, wanted in checks:
        kind = schema.field(column).type
        if not test(kind):
            raise DatasetError(f"has type {kind}; expected {wanted}", field=column)


def pickapic_count(path: str | Path) -> int:
    """Rows in the file, from its footer (nothing decoded)."""
    return int(_open(path).metadata.num_rows)


@dataclass(frozen=True)
class PickBatch:
    """The labelled rows of one record batch, and the 0-based file offset just past the batch."""

    end: int
    rows: list[PickRow]


def pickapic_read(
    path: str | Path, *, batch_rows: int = 1000, start_row: int = 0, columns: Sequence[str] | None = None
) -> Iterator[PickBatch]:
    """Yield the labelled rows of a Pick-a-Pic-shaped parquet file in batches, from `start_row` (0-based).

    Rows with ``has_label`` false are skipped. A bad value raises DatasetError naming row and field.
    """
    handle = _open(path)
    schema = handle.schema_arrow
    check_schema(schema)
    wanted = [c for c in (*REQUIRED, *OPTIONAL_STRINGS, "user_id", "has_label") if c in schema.names]
    if columns:
        wanted = [c for c in wanted if c in columns or c in REQUIRED]
    offset = 0
    try:
        for batch in handle.iter_batches(batch_size=batch_rows, columns=wanted):
            first = offset
            offset += batch.num_rows
            if offset <= start_row:
                continue
            skip = max(0, start_row - first)
            yield PickBatch(offset, _rows(batch.to_pydict(), first=first, skip=skip))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DatasetError(f"the parquet file is damaged after row {offset}: {exc}", row=offset + 1) from exc


def _text(values: dict[str, list[Any]], column: str, i: int) -> str:
    value = values.get(column, [None] * (i + 1))[i]
    return "" if value is None else str(value)


def _rows(values: dict[str, list[Any]], *, first: int, skip: int) -> list[PickRow]:
    out: list[PickRow] = []
    n = len(values["caption"])
    for i in range(skip, n):
        row = first + i + 1
        if "has_label" in values and values["has_label"][i] is False:
            continue
        caption = values["caption"][i]
        if not caption or not str(caption).strip():
            raise DatasetError("the caption is empty", row=row, field="caption")
        label_0, label_1 = values["label_0"][i], values["label_1"][i]
        if label_0 is None:
            raise DatasetError("the label is missing", row=row, field="label_0")
        if label_1 is None:
            raise DatasetError("the label is missing", row=row, field="label_1")
        if float(label_0) not in (0.0, 0.5, 1.0):
            raise DatasetError(f"{label_0!r} is not 0, 0.5 or 1", row=row, field="label_0")
        if float(label_0) + float(label_1) != 1.0:
            raise DatasetError(
                f"label_0={label_0!r} and label_1={label_1!r} do not add up to 1", row=row, field="label_1"
            )
        for column in ("jpg_0", "jpg_1"):
            if not values[column][i]:
                raise DatasetError("the image bytes are missing", row=row, field=column)
        out.append(
            PickRow(
                row=row,
                caption=str(caption),
                jpg_0=bytes(values["jpg_0"][i]),
                jpg_1=bytes(values["jpg_1"][i]),
                label_0=float(label_0),
                model_0=_text(values, "model_0", i),
                model_1=_text(values, "model_1", i),
                user_id=_text(values, "user_id", i),
                uid_0=_text(values, "image_0_uid", i),
                uid_1=_text(values, "image_1_uid", i),
                aspect=_text(values, "aspect", i),
                label_source=_text(values, "label_source", i),
            )
        )
    return out


# --- the Diffusion-DPO export ------------------------------------------------------------------------


def dpo_schema(*, paths: bool = False) -> pa.Schema:
    """The exported table: Pick-a-Pic's pair columns plus which aspect and which label source."""
    image = pa.string() if paths else pa.binary()
    return pa.schema(
        [
            ("caption", pa.string()),
            ("jpg_0", image),
            ("jpg_1", image),
            ("label_0", pa.float64()),
            ("label_1", pa.float64()),
            ("model_0", pa.string()),
            ("model_1", pa.string()),
            ("aspect", pa.string()),
            ("label_source", pa.string()),
        ]
    )


class DpoWriter:
    """Streams rows (dicts with the schema's keys) to a parquet file in record batches."""

    def __init__(self, path: str | Path, *, paths: bool = False, batch_rows: int = 2000) -> None:
        self.schema = dpo_schema(paths=paths)
        self.batch_rows = batch_rows
        self._writer = pq.ParquetWriter(str(path), self.schema, compression="zstd")
        self._pending: list[dict[str, Any]] = []
        self.rows = 0

    def write(self, row: dict[str, Any]) -> None:
        self._pending.append(row)
        if len(self._pending) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        columns = {name: [r[name] for r in self._pending] for name in self.schema.names}
        self._writer.write_batch(pa.RecordBatch.from_pydict(columns, schema=self.schema))
        self.rows += len(self._pending)
        self._pending = []

    def close(self) -> int:
        self.flush()
        self._writer.close()
        return self.rows

    def __enter__(self) -> DpoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
