"""Importing prompts from CSV, JSONL, plain text and DiffusionDB-style metadata parquet.

A file is imported all or nothing: every row is parsed and checked first, and only a file without a
single error is written, in one transaction. Errors name the line (or parquet row) and the field, so
an admin can fix the file and upload it again.

Formats:

- ``csv``: a header with a ``prompt`` column; ``source_id`` (or ``id``) becomes the prompt's source id,
  every other non-empty column goes into ``Prompt.meta``. Blank lines are skipped.
- ``jsonl``: one JSON object per line with a string ``prompt``; ``source_id``/``id`` as for CSV, ``tags``
  (a list of strings) into ``Prompt.tags``, other keys into ``Prompt.meta``. Blank lines are skipped.
- ``txt``: one prompt per line; blank lines are skipped.
- ``parquet``: DiffusionDB's ``metadata.parquet`` layout: ``prompt`` plus any of ``seed``, ``step``,
  ``cfg``, ``sampler``, ``width``, ``height`` (and the rest), kept in ``Prompt.meta``; ``image_name``
  (or ``id``) is the source id and the source is ``diffusiondb``. Rows are numbered from 1.

Untrusted sizes are bounded: a file over PROMPT_IMPORT_MAX_BYTES or with more than PROMPT_IMPORT_MAX_ROWS
rows is refused with an error saying so. A parquet file is refused from its metadata (rows, uncompressed
size) before any of it is decoded, and is then read in record batches, so a small file that expands to
millions of rows costs neither time nor memory.

Prompts are deduplicated by their whitespace-normalised text, within the file and against the
database (the same key as ``prompt_get_or_create``). The optional unsafe-word filter flags
(``is_unsafe=True``) or skips prompts containing a listed word.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from annotate.models import Campaign, Prompt
from annotate.services.prompts import prompt_text_key

FORMATS = ("csv", "jsonl", "txt", "parquet")
EXTENSION_FORMATS = {
    "csv": "csv",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "txt": "txt",
    "text": "txt",
    "parquet": "parquet",
}
UNSAFE_ACTIONS = ("off", "flag", "skip")
MAX_PROMPT_CHARS = 2000
MAX_ERRORS_SHOWN = 50
# A deliberately small, obvious list; set PROMPT_UNSAFE_WORDS in settings (or pass unsafe_words) for a
# real deployment's list. Whole words only, case-insensitive.
DEFAULT_UNSAFE_WORDS = (
    "nude",
    "naked",
    "nsfw",
    "porn",
    "sex",
    "gore",
    "gory",
    "decapitated",
    "corpse",
    "blood",
    "suicide",
    "torture",
)
_CHUNK = 1000
PARQUET_BATCH_ROWS = 5000
#: A parquet file may decode to at most this many times PROMPT_IMPORT_MAX_BYTES (its metadata says how much).
PARQUET_MAX_EXPANSION = 4


class PromptImportError(ValueError):
    """The file cannot be imported; `errors` lists every problem found, each naming line and field."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        shown = errors[:MAX_ERRORS_SHOWN]
        more = len(errors) - len(shown)
        text = "\n".join(shown) + (f"\n… and {more} more errors" if more > 0 else "")
        super().__init__(f"{len(errors)} error(s); nothing was imported:\n{text}")


@dataclass
class PromptRow:
    """One prompt read from a file, before it touches the database."""

    line: int
    text: str
    source_id: str = ""
    tags: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class PromptImportResult:
    """What an import did."""

    format: str
    rows: int = 0
    created: int = 0
    existing: int = 0
    duplicates_in_file: int = 0
    flagged_unsafe: int = 0
    skipped_unsafe: int = 0
    prompt_ids: list[int] = field(default_factory=list)

    def summary(self) -> str:
        """One line for a message or the command's output."""
        parts = [
            f"{self.rows} rows",
            f"{self.created} new prompts",
            f"{self.existing} already known",
            f"{self.duplicates_in_file} duplicates in the file",
        ]
        if self.flagged_unsafe:
            parts.append(f"{self.flagged_unsafe} flagged unsafe")
        if self.skipped_unsafe:
            parts.append(f"{self.skipped_unsafe} skipped as unsafe")
        return ", ".join(parts)


def prompt_import_format(*, filename: str, format: str | None = None) -> str:
    """The format to read: the explicit one, else from the file name's extension."""
    if format:
        if format not in FORMATS:
            raise PromptImportError([f"unknown format {format!r}; use one of {', '.join(FORMATS)}"])
        return format
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext not in EXTENSION_FORMATS:
        raise PromptImportError(
            [
                f"cannot tell the format of {filename or 'the file'!r}: name it .csv, .jsonl, .txt or "
                f".parquet, or choose the format"
            ]
        )
    return EXTENSION_FORMATS[ext]


# --------------------------------------------------------------------------------------------- parsing


def _decode(data: bytes) -> str:
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise PromptImportError([f"line {line}: the file contains NUL bytes; it is binary, not text"])
    try:
        # utf-8-sig: spreadsheet programs often start UTF-8 files with a byte-order mark.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PromptImportError(
            [
                f"line {line}, byte {column}: the file is not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                "save it as UTF-8 and upload it again"
            ]
        ) from exc


def _check_text(value: Any, where: str, errors: list[str]) -> str | None:
    if value is None:
        errors.append(f"{where}: empty")
        return None
    if not isinstance(value, str):
        errors.append(f"{where}: expected text, got {type(value).__name__}")
        return None
    clean = " ".join(value.split())
    if not clean:
        errors.append(f"{where}: empty")
        return None
    if len(clean) > MAX_PROMPT_CHARS:
        errors.append(f"{where}: {len(clean):,} characters; the limit is {MAX_PROMPT_CHARS:,}")
        return None
    return clean


def _too_many_rows(max_rows: int) -> str:
    return f"the file has more than {max_rows:,} rows; the limit is {max_rows:,} (split it, or raise PROMPT_IMPORT_MAX_ROWS)"


def _parse_csv(text: str, errors: list[str], max_rows: int) -> list[PromptRow]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as exc:
        errors.append(f"line 1: not valid CSV ({exc})")
        return []
    columns = [name.strip().lower() for name in header]
    if "prompt" not in columns:
        found = ", ".join(repr(c) for c in columns) or "nothing"
        errors.append(f"line 1: there is no 'prompt' column; the header has {found}")
        return []
    duplicated = sorted({c for c in columns if c and columns.count(c) > 1})
    if duplicated:
        errors.append(f"line 1: columns appear twice in the header: {', '.join(duplicated)}")
        return []
    rows: list[PromptRow] = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(rows) >= max_rows:
                errors.append(_too_many_rows(max_rows))
                break
            if len(values) != len(columns):
                n = len(values)
                errors.append(
                    f"line {line}: {n} value{'s' * (n != 1)}, but the header has {len(columns)} columns"
                )
                continue
            record = dict(zip(columns, values, strict=True))
            prompt = _check_text(record.pop("prompt"), f"line {line}, column 'prompt'", errors)
            if prompt is None:
                continue
            source_id = (record.pop("source_id", "") or record.pop("id", "")).strip()
            meta = {k: v for k, v in record.items() if k and v.strip()}
            rows.append(PromptRow(line, prompt, source_id=source_id[:128], meta=meta))
    except csv.Error as exc:
        errors.append(f"line {reader.line_num}: not valid CSV ({exc})")
    return rows


def _parse_jsonl(text: str, errors: list[str], max_rows: int) -> list[PromptRow]:
    rows: list[PromptRow] = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if len(rows) >= max_rows:
            errors.append(_too_many_rows(max_rows))
            break
        try:
            record = json.loads(raw)
        except ValueError as exc:
            errors.append(f"line {line}: not valid JSON ({exc})")
            continue
        if not isinstance(record, dict):
            errors.append(f"line {line}: expected a JSON object, got {type(record).__name__}")
            continue
        if "prompt" not in record:
            errors.append(f"line {line}, field 'prompt': missing")
            continue
        prompt = _check_text(record.pop("prompt"), f"line {line}, field 'prompt'", errors)
        tags = record.pop("tags", [])
        if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            errors.append(f"line {line}, field 'tags': expected a list of strings")
            continue
        if prompt is None:
            continue
        source_id = record.pop("source_id", None) or record.pop("id", None) or ""
        rows.append(PromptRow(line, prompt, source_id=str(source_id)[:128], tags=tags, meta=record))
    return rows


def _parse_txt(text: str, errors: list[str], max_rows: int) -> list[PromptRow]:
    rows: list[PromptRow] = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if len(rows) >= max_rows:
            errors.append(_too_many_rows(max_rows))
            break
        prompt = _check_text(raw, f"line {line}", errors)
        if prompt is not None:
            rows.append(PromptRow(line, prompt))
    return rows


def _json_value(value: Any) -> Any:
    # Parquet timestamps and decimals are not JSON; meta keeps them as text.
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def _parse_parquet(data: bytes, errors: list[str], max_rows: int, max_bytes: int) -> list[PromptRow]:
    # pyarrow is heavy; only parquet imports need it.
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        errors.append(f"the file is not a readable parquet file ({exc})")
        return []
    # Refuse from the metadata first: a few kilobytes of parquet can hold millions of repeated rows.
    metadata = parquet.metadata
    if metadata.num_rows > max_rows:
        errors.append(
            f"the file has {metadata.num_rows:,} rows; the limit is {max_rows:,} "
            "(split it, or raise PROMPT_IMPORT_MAX_ROWS)"
        )
        return []
    expanded = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if expanded > PARQUET_MAX_EXPANSION * max_bytes:
        errors.append(
            f"the file's data is {expanded:,} bytes uncompressed; the limit is "
            f"{PARQUET_MAX_EXPANSION * max_bytes:,} bytes"
        )
        return []
    schema = parquet.schema_arrow
    columns = schema.names
    if "prompt" not in columns:
        errors.append(f"there is no 'prompt' column; the file has {', '.join(map(repr, columns)) or 'none'}")
        return []
    prompt_type = schema.field("prompt").type
    if not (pa.types.is_string(prompt_type) or pa.types.is_large_string(prompt_type)):
        errors.append(f"column 'prompt' holds {prompt_type}, not text")
        return []
    id_column = next((c for c in ("image_name", "id", "source_id") if c in columns), None)
    rows: list[PromptRow] = []
    number = 0
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            if number + batch.num_rows > max_rows:  # metadata that undercounts its rows
                errors.append(_too_many_rows(max_rows))
                return rows
            for record in batch.to_pylist():
                number += 1
                prompt = _check_text(record.pop("prompt"), f"row {number}, column 'prompt'", errors)
                if prompt is None:
                    continue
                source_id = record.pop(id_column, None) if id_column else None
                meta = {k: _json_value(v) for k, v in record.items() if v is not None}
                rows.append(PromptRow(number, prompt, source_id=str(source_id or "")[:128], meta=meta))
    except (pa.ArrowException, OSError, ValueError) as exc:
        errors.append(f"row {number + 1} onwards: the parquet data cannot be read ({exc})")
    return rows


def prompt_rows_parse(*, data: bytes, format: str) -> list[PromptRow]:
    """Read and check every row of a prompt file; raise PromptImportError listing all problems."""
    errors: list[str] = []
    max_bytes, max_rows = settings.PROMPT_IMPORT_MAX_BYTES, settings.PROMPT_IMPORT_MAX_ROWS
    if len(data) > max_bytes:
        raise PromptImportError(
            [f"the file is {len(data):,} bytes; the limit is {max_bytes:,} (PROMPT_IMPORT_MAX_BYTES)"]
        )
    if format == "parquet":
        rows = _parse_parquet(data, errors, max_rows, max_bytes)
    else:
        text = _decode(data)
        parse = {"csv": _parse_csv, "jsonl": _parse_jsonl, "txt": _parse_txt}[format]
        rows = parse(text, errors, max_rows)
    if errors:
        raise PromptImportError(errors)
    if not rows:
        raise PromptImportError(["the file holds no prompts"])
    return rows


# ------------------------------------------------------------------------------------------ unsafe words


def unsafe_pattern(words: Iterable[str] | None = None) -> re.Pattern[str] | None:
    """A whole-word, case-insensitive pattern for the unsafe-word list (settings.PROMPT_UNSAFE_WORDS)."""
    if words is None:
        words = getattr(settings, "PROMPT_UNSAFE_WORDS", DEFAULT_UNSAFE_WORDS)
    cleaned = sorted({w.strip().lower() for w in words if w.strip()})
    if not cleaned:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in cleaned) + r")\b", re.IGNORECASE)


# ------------------------------------------------------------------------------------------------ write


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def prompts_import(
    *,
    data: bytes,
    filename: str = "",
    format: str | None = None,
    campaign: Campaign | None = None,
    unsafe: str = "flag",
    unsafe_words: Iterable[str] | None = None,
    source: str | None = None,
) -> PromptImportResult:
    """Import a prompt file all or nothing; raise PromptImportError (nothing written) on any bad row.

    `unsafe` is "off", "flag" (store with is_unsafe=True) or "skip" (leave the prompt out).
    """
    fmt = prompt_import_format(filename=filename, format=format)
    if unsafe not in UNSAFE_ACTIONS:
        raise PromptImportError([f"unknown unsafe action {unsafe!r}; use one of {', '.join(UNSAFE_ACTIONS)}"])
    rows = prompt_rows_parse(data=data, format=fmt)
    source = source or ("diffusiondb" if fmt == "parquet" else "upload")
    pattern = unsafe_pattern(unsafe_words) if unsafe != "off" else None
    result = PromptImportResult(format=fmt, rows=len(rows))

    unique: dict[str, tuple[PromptRow, bool]] = {}
    for row in rows:
        key = prompt_text_key(row.text)
        if key in unique:
            result.duplicates_in_file += 1
            continue
        flagged = bool(pattern and pattern.search(row.text))
        if flagged and unsafe == "skip":
            result.skipped_unsafe += 1
            continue
        result.flagged_unsafe += int(flagged)
        unique[key] = (row, flagged)

    with transaction.atomic():
        for keys in _chunks(list(unique), _CHUNK):
            known = dict(Prompt.objects.filter(text_sha256__in=keys).values_list("text_sha256", "pk"))
            new = [
                Prompt(
                    text=unique[k][0].text,
                    text_sha256=k,
                    source=source,
                    source_id=unique[k][0].source_id,
                    tags=unique[k][0].tags,
                    meta=unique[k][0].meta,
                    is_unsafe=unique[k][1],
                )
                for k in keys
                if k not in known
            ]
            # ignore_conflicts: a concurrent import of the same text must not fail this one.
            Prompt.objects.bulk_create(new, ignore_conflicts=True)
            ids = dict(Prompt.objects.filter(text_sha256__in=keys).values_list("text_sha256", "pk"))
            flagged_known = [known[k] for k in keys if k in known and unique[k][1]]
            if flagged_known:
                Prompt.objects.filter(pk__in=flagged_known).update(is_unsafe=True)
            result.existing += len(known)
            result.created += len(ids) - len(known)
            result.prompt_ids += [ids[k] for k in keys]
        if campaign is not None:
            for ids_chunk in _chunks(result.prompt_ids, _CHUNK):
                campaign.prompts.add(*ids_chunk)
    return result
