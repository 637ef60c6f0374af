"""HPD v2 (Human Preference Dataset v2) ``test.json`` or ``train.json``, with its images in a zip or tar.gz.

- ``test.json``: ``{"prompt", "image_path": [names], "rank": [int], "raw_annotations": [{"rank": [int],
  "user_hash"}]}`` (also spelled ``raw_annotation``); lower rank is better. With raw annotations, each
  rater's own ranking gives that rater's label on every pair of the record (``user_id`` = ``user_hash``),
  so human-human agreement can be measured; without them the averaged ``rank`` is one label.
- ``train.json``: ``{"prompt", "file_path" | "image_path": [two names], "human_preference": [1, 0],
  "user_hash"?}``: one pair, the image with preference 1 wins.

Image names are looked up next to the JSON file, then by their path anywhere in the archive, then by
file name when exactly one member has it (the images of ``test.tar.gz`` sit in ``test/``). Every lookup
goes through the archive's safety checks.
"""

from __future__ import annotations

import itertools
import json
import posixpath
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.datasets.archives import ArchiveReader, safe_member_name
from pipeline.datasets.errors import DatasetError
from pipeline.datasets.pickapic import PickBatch, PickRow


class _Images:
    def __init__(self, reader: ArchiveReader, base: str) -> None:
        self.reader = reader
        self.base = base
        self.by_name: dict[str, list[str]] = defaultdict(list)
        for name in reader.names():
            self.by_name[posixpath.basename(name)].append(name)

    def read(self, name: str) -> bytes:
        clean = safe_member_name(name)
        for candidate in (posixpath.join(self.base, clean) if self.base else clean, clean):
            if candidate in self.reader:
                return self.reader.read(candidate)
        matches = self.by_name.get(posixpath.basename(clean), [])
        if len(matches) == 1:
            return self.reader.read(matches[0])
        raise DatasetError(
            f"image {name!r} is not in the archive" if not matches else f"image name {name!r} is ambiguous"
        )


def _load(reader: ArchiveReader) -> tuple[str, list[Any]]:
    names = [n for n in reader.names() if posixpath.basename(n) in ("test.json", "train.json")]
    if len(names) != 1:
        raise DatasetError(f"the archive must hold one test.json or train.json (found {len(names)})")
    try:
        records = json.loads(reader.read(names[0]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{names[0]} is not valid JSON: {exc}") from exc
    if not isinstance(records, list):
        raise DatasetError(f"{names[0]} must hold a JSON array of records")
    return posixpath.dirname(names[0]), records


def _int_list(record: dict[str, Any], key: str, n: int, row: int) -> list[int]:
    value = record.get(key)
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise DatasetError("must be a list of integers", row=row, field=key)
    if len(value) != n:
        raise DatasetError(f"has {len(value)} values for {n} images", row=row, field=key)
    return value


def _pairs(row: int, prompt: str, data: list[bytes], ranks: list[int], rater: str, uid: str) -> list[PickRow]:
    out = []
    for i, j in itertools.combinations(range(len(data)), 2):
        label = 0.5 if ranks[i] == ranks[j] else float(ranks[i] < ranks[j])
        out.append(
            PickRow(
                row=row,
                caption=prompt,
                jpg_0=data[i],
                jpg_1=data[j],
                label_0=label,
                model_0="",
                model_1="",
                user_id=rater,
                uid_0=f"{uid}/{i}",
                uid_1=f"{uid}/{j}",
                aspect="",
                label_source="",
            )  # fmt: skip
        )
    return out


def _record_rows(record: Any, row: int, images: _Images) -> list[PickRow]:
    if not isinstance(record, dict):
        raise DatasetError("a record must be a JSON object", row=row)
    prompt = record.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise DatasetError("must be non-empty text", row=row, field="prompt")
    key = "image_path" if "image_path" in record else "file_path"
    paths = record.get(key)
    if not isinstance(paths, list) or len(paths) < 2 or not all(isinstance(p, str) for p in paths):
        raise DatasetError("must be a list of at least two image paths", row=row, field=key)
    data = []
    for path in paths:
        try:
            data.append(images.read(path))
        except DatasetError as exc:
            raise DatasetError(exc.reason, row=row, field=key) from exc
    if "human_preference" in record:  # train.json
        preference = _int_list(record, "human_preference", len(paths), row)
        ranks = [0 if p else 1 for p in preference]
        return _pairs(row, prompt, data, ranks, str(record.get("user_hash") or ""), f"train-{row}")
    raw = record.get("raw_annotations", record.get("raw_annotation"))
    if raw:
        if not isinstance(raw, list):
            raise DatasetError("must be a list of {rank, user_hash}", row=row, field="raw_annotations")
        out = []
        for n, annotation in enumerate(raw):
            if not isinstance(annotation, dict) or not annotation.get("user_hash"):
                raise DatasetError(f"entry {n + 1} needs a user_hash", row=row, field="raw_annotations")
            ranks = _int_list(annotation, "rank", len(paths), row)
            out += _pairs(row, prompt, data, ranks, str(annotation["user_hash"]), f"test-{row}")
        return out
    ranks = _int_list(record, "rank", len(paths), row)
    return _pairs(row, prompt, data, ranks, "", f"test-{row}")


def hpd_count(path: str | Path) -> int:
    with ArchiveReader(path) as reader:
        return len(_load(reader)[1])


def hpd_read(path: str | Path, *, batch_rows: int = 50, start_row: int = 0) -> Iterator[PickBatch]:
    """Yield each batch of records as pairwise rows; `end` counts records (0-based, exclusive)."""
    with ArchiveReader(path) as reader:
        base, records = _load(reader)
        images = _Images(reader, base)
        for first in range(start_row, len(records), batch_rows):
            rows: list[PickRow] = []
            for offset, record in enumerate(records[first : first + batch_rows]):
                rows += _record_rows(record, first + offset + 1, images)
            yield PickBatch(min(len(records), first + batch_rows), rows)
