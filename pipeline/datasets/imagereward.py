"""ImageReward's ``data/test.json`` (with its images in a zip) in, as pairwise rows.

A record is ``{"id": "000123-0007", "prompt": ..., "generations": [relative image paths], "ranking": [int]}``
where a lower rank is better and equal ranks are ties. Every two images of a record make one pair: the
record's rows come out as :class:`~pipeline.datasets.pickapic.PickRow` (label 1/0, or 0.5 for a tie), so
the app writes them like a Pick-a-Pic shard. Image paths are resolved inside the archive next to the JSON
file, through the archive's safety checks.
"""

from __future__ import annotations

import itertools
import json
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.datasets.archives import ArchiveReader, safe_member_name
from pipeline.datasets.errors import DatasetError
from pipeline.datasets.pickapic import PickBatch, PickRow


def _json_member(reader: ArchiveReader) -> str:
    names = [n for n in reader.names() if n.endswith(".json")]
    preferred = [n for n in names if posixpath.basename(n) == "test.json"] or names
    if len(preferred) != 1:
        raise DatasetError(
            f"the archive must hold one test.json (found: {', '.join(names) or 'no JSON file'})"
        )
    return preferred[0]


def _records(reader: ArchiveReader) -> tuple[str, list[Any]]:
    member = _json_member(reader)
    try:
        records = json.loads(reader.read(member))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{member} is not valid JSON: {exc}") from exc
    if not isinstance(records, list):
        raise DatasetError(f"{member} must hold a JSON array of records")
    return posixpath.dirname(member), records


def _check(record: Any, row: int) -> tuple[str, str, list[str], list[int]]:
    if not isinstance(record, dict):
        raise DatasetError("a record must be a JSON object", row=row)
    for key in ("prompt", "generations", "ranking"):
        if key not in record:
            raise DatasetError("the key is missing", row=row, field=key)
    prompt, generations, ranking = record["prompt"], record["generations"], record["ranking"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise DatasetError("must be non-empty text", row=row, field="prompt")
    if not isinstance(generations, list) or not all(isinstance(g, str) for g in generations):
        raise DatasetError("must be a list of image paths", row=row, field="generations")
    if not isinstance(ranking, list) or not all(
        isinstance(r, int) and not isinstance(r, bool) for r in ranking
    ):
        raise DatasetError("must be a list of integers", row=row, field="ranking")
    if len(ranking) != len(generations):
        raise DatasetError(
            f"has {len(ranking)} ranks for {len(generations)} images", row=row, field="ranking"
        )
    if len(generations) < 2:
        raise DatasetError("a record needs at least two images", row=row, field="generations")
    return str(record.get("id", row)), prompt, generations, ranking


def imagereward_count(path: str | Path) -> int:
    with ArchiveReader(path) as reader:
        return len(_records(reader)[1])


def imagereward_read(path: str | Path, *, batch_rows: int = 50, start_row: int = 0) -> Iterator[PickBatch]:
    """Yield each batch of records as pairwise rows; `end` counts records (0-based, exclusive)."""
    with ArchiveReader(path) as reader:
        base, records = _records(reader)
        for first in range(start_row, len(records), batch_rows):
            rows: list[PickRow] = []
            for offset, record in enumerate(records[first : first + batch_rows]):
                row = first + offset + 1
                record_id, prompt, generations, ranking = _check(record, row)
                data = []
                for path_in_record in generations:
                    try:
                        name = safe_member_name(posixpath.join(base, safe_member_name(path_in_record)))
                        data.append(reader.read(name))
                    except DatasetError as exc:
                        raise DatasetError(exc.reason, row=row, field="generations") from exc
                for i, j in itertools.combinations(range(len(generations)), 2):
                    label = 0.5 if ranking[i] == ranking[j] else float(ranking[i] < ranking[j])
                    rows.append(
                        PickRow(
                            row=row,
                            caption=prompt,
                            jpg_0=data[i],
                            jpg_1=data[j],
                            label_0=label,
                            model_0="",
                            model_1="",
                            user_id="",
                            uid_0=f"{record_id}/{i}",
                            uid_1=f"{record_id}/{j}",
                            aspect="",
                            label_source="",
                        )  # fmt: skip
                    )
            yield PickBatch(min(len(records), first + batch_rows), rows)
