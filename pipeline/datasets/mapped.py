"""Look-alike files through a column mapping: a CSV or parquet of prompt, two images and a choice.

``mapping`` names the file's column for each of ``caption``, ``jpg_0``, ``jpg_1`` and either ``label_0``
(a number: 1, 0 or 0.5) or ``choice`` (text: ``0``/``A``/``left`` for the first image, ``1``/``B``/``right``
for the second, ``tie``); optionally ``model_0``, ``model_1``, ``user_id``. Image columns hold encoded
bytes (parquet) or paths; paths are read from the archive the file came in (a zip or tar.gz holding the
one CSV or parquet file and the images, paths relative to it), through the archive's safety checks.
Rows come out as :class:`~pipeline.datasets.pickapic.PickRow`.
"""

from __future__ import annotations

import csv
import io
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline.datasets.archives import ArchiveReader, safe_member_name
from pipeline.datasets.errors import DatasetError
from pipeline.datasets.pickapic import PickBatch, PickRow

CHOICES = {"0": 1.0, "a": 1.0, "left": 1.0, "1": 0.0, "b": 0.0, "right": 0.0, "tie": 0.5}
REQUIRED = ("caption", "jpg_0", "jpg_1")


def check_mapping(mapping: dict[str, str]) -> None:
    missing = [key for key in REQUIRED if not mapping.get(key)]
    if missing or not (mapping.get("label_0") or mapping.get("choice")):
        raise DatasetError(
            "the column mapping needs caption, jpg_0, jpg_1 and label_0 or choice"
            + (f" (missing: {', '.join(missing)})" if missing else "")
        )


class _Source:
    """The table (CSV or parquet) and, for an archive, where its image paths are read from."""

    def __init__(self, path: Path) -> None:
        self.archive: ArchiveReader | None = None
        self.base = ""
        if path.suffix in (".csv", ".parquet"):
            self.kind, self.data = path.suffix[1:], path.read_bytes()
            return
        self.archive = ArchiveReader(path)
        tables = [n for n in self.archive.names() if n.endswith((".csv", ".parquet"))]
        if len(tables) != 1:
            self.archive.close()
            raise DatasetError(f"the archive must hold one .csv or .parquet file (found {len(tables)})")
        self.kind, self.data = tables[0].rsplit(".", 1)[1], self.archive.read(tables[0])
        self.base = posixpath.dirname(tables[0])

    def rows(self) -> list[dict[str, Any]]:
        if self.kind == "csv":
            try:
                return list(csv.DictReader(io.StringIO(self.data.decode("utf-8-sig"))))
            except UnicodeDecodeError as exc:
                raise DatasetError(f"the CSV file is not UTF-8: {exc}") from exc
        try:
            return pq.read_table(io.BytesIO(self.data)).to_pylist()
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a damaged file
            raise DatasetError(f"not a readable parquet file (truncated or damaged): {exc}") from exc

    def image(self, value: Any, row: int, field: str) -> bytes:
        if isinstance(value, bytes | bytearray) and value:
            return bytes(value)
        if not isinstance(value, str) or not value:
            raise DatasetError("the image (bytes or a path) is missing", row=row, field=field)
        if self.archive is None:
            raise DatasetError(
                "image paths need the file and its images in a zip or tar.gz", row=row, field=field
            )
        try:
            clean = safe_member_name(value)
            return self.archive.read(posixpath.join(self.base, clean) if self.base else clean)
        except DatasetError as exc:
            raise DatasetError(exc.reason, row=row, field=field) from exc

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


def _label(record: dict[str, Any], mapping: dict[str, str], row: int) -> float:
    if mapping.get("label_0"):
        column = mapping["label_0"]
        try:
            value = float(record.get(column))  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"{record.get(column)!r} is not a number", row=row, field=column) from exc
        if value not in (0.0, 0.5, 1.0):
            raise DatasetError(f"{value!r} is not 0, 0.5 or 1", row=row, field=column)
        return value
    column = mapping["choice"]
    choice = str(record.get(column) or "").strip().lower()
    if choice not in CHOICES:
        raise DatasetError(
            f"{record.get(column)!r} is not one of 0/A/left, 1/B/right, tie", row=row, field=column
        )
    return CHOICES[choice]


def mapped_count(path: str | Path, mapping: dict[str, str]) -> int:
    source = _Source(Path(path))
    try:
        return len(source.rows())
    finally:
        source.close()


def mapped_read(
    path: str | Path, mapping: dict[str, str], *, batch_rows: int = 500, start_row: int = 0
) -> Iterator[PickBatch]:
    """Yield the mapped rows in batches (the table is read whole; its images one row at a time)."""
    check_mapping(mapping)
    source = _Source(Path(path))
    try:
        records = source.rows()
        if records:
            present = set(records[0])
            for key, column in mapping.items():
                if column and column not in present:
                    raise DatasetError(f"the column mapped to {key} is missing", field=column)
        for first in range(start_row, len(records), batch_rows):
            rows = []
            for offset, record in enumerate(records[first : first + batch_rows]):
                row = first + offset + 1
                caption = record.get(mapping["caption"])
                if not isinstance(caption, str) or not caption.strip():
                    raise DatasetError("the prompt is empty", row=row, field=mapping["caption"])

                def text(key: str, record: dict[str, Any] = record) -> str:
                    value = record.get(mapping.get(key) or "")
                    return "" if value is None else str(value)

                rows.append(
                    PickRow(
                        row=row,
                        caption=caption,
                        jpg_0=source.image(record.get(mapping["jpg_0"]), row, mapping["jpg_0"]),
                        jpg_1=source.image(record.get(mapping["jpg_1"]), row, mapping["jpg_1"]),
                        label_0=_label(record, mapping, row),
                        model_0=text("model_0"),
                        model_1=text("model_1"),
                        user_id=text("user_id"),
                        uid_0=text("jpg_0") if source.archive else "",
                        uid_1=text("jpg_1") if source.archive else "",
                        aspect="",
                        label_source="",
                    )
                )
            yield PickBatch(min(len(records), first + batch_rows), rows)
    finally:
        source.close()
