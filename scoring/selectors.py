"""Reads for reports: judgments as numpy arrays, loaded in one pass without Python work per row.

On PostgreSQL the rows come out of ``COPY (SELECT ...) TO STDOUT (FORMAT BINARY)``: every selected column is
fixed-width and never NULL (durations are COALESCEd to NaN), so each row has the same byte layout and the
whole stream is parsed by one ``numpy.frombuffer`` with a big-endian structured dtype. Other databases
(the SQLite demo) use ``fetchmany`` batches. Choices are coded by the database (a CASE expression) in the
convention of ``scoring.stats``: 0 = A, 1 = tie, 2 = B. Ids become dense indexes (pair -> item,
annotator -> judge) with a lookup table when ids are dense, ``numpy.unique`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Exists, OuterRef

from annotate.models import Annotator, Aspect, Campaign, Generator, Judgment, Pair

FETCH_BATCH = 50_000

# Column order of the judgment query; every column is 8 or 2 bytes wide and never NULL.
_COLUMNS = ("pair", "annotator", "aspect", "trial", "choice", "a_first", "seconds")
_BINARY_ROW = np.dtype(
    [
        ("n_fields", ">i2"),
        ("pair_len", ">i4"),
        ("pair", ">i8"),
        ("annotator_len", ">i4"),
        ("annotator", ">i8"),
        ("aspect_len", ">i4"),
        ("aspect", ">i8"),
        ("trial_len", ">i4"),
        ("trial", ">i2"),
        ("choice_len", ">i4"),
        ("choice", ">i2"),
        ("a_first_len", ">i4"),
        ("a_first", ">i2"),
        ("seconds_len", ">i4"),
        ("seconds", ">f8"),
    ]
)
_BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


@dataclass(frozen=True)
class JudgmentFilter:
    """Which judgments a report reads."""

    campaign_ids: tuple[int, ...]
    aspect_ids: tuple[int, ...] | None = None  # None: every aspect
    include_flagged: bool = False
    include_blocked: bool = False
    ai_judge_ids: tuple[int, ...] | None = None  # non-human annotator ids; None: every AI judge and model
    include_rejected: bool = False  # review: rejected judgments are left out unless asked
    exclude_simulated: bool = False  # the demo's simulated crowdworkers


@dataclass(frozen=True)
class JudgmentArrays:
    """Long-format judgments: one entry per row in every per-row array, ids mapped to dense indexes."""

    item: np.ndarray  # int64 index into pair_ids
    judge: np.ndarray  # int64 index into annotator_ids
    aspect: np.ndarray  # int64 index into aspect_ids
    trial: np.ndarray  # int16
    choice: np.ndarray  # int8: 0 = A, 1 = tie, 2 = B
    a_first: np.ndarray  # bool: image A was shown first/left (presented order "AB")
    seconds: np.ndarray  # float64, NaN when not recorded
    pair_ids: np.ndarray  # sorted pair ids; item i is pair_ids[i]
    annotator_ids: np.ndarray
    aspect_ids: np.ndarray

    @property
    def n_items(self) -> int:
        """Number of distinct pairs with at least one selected judgment."""
        return int(self.pair_ids.size)

    @property
    def size(self) -> int:
        """Number of judgments."""
        return int(self.item.size)


@dataclass(frozen=True)
class PairArrays:
    """Per-item facts aligned with ``JudgmentArrays.pair_ids``: generator indexes and gold answers."""

    gen_a: np.ndarray  # int64 index into generator_ids
    gen_b: np.ndarray
    generator_ids: np.ndarray
    gold: dict[str, np.ndarray]  # aspect key -> per-item gold choice, -1 where not gold
    is_gold: np.ndarray  # bool per item: gold pairs are checks on judges, not generator comparisons


def _judgment_sql(flt: JudgmentFilter) -> str:
    # Every value interpolated here is an int (cast below) or a fixed literal, so the statement can be sent
    # through COPY, which takes no bind parameters.
    def id_list(ids: Sequence[int]) -> str:
        return ", ".join(str(int(i)) for i in ids) or "NULL"

    human_statuses = ["'active'"]
    if flt.include_flagged:
        human_statuses.append("'flagged'")
    if flt.include_blocked:
        human_statuses.append("'blocked'")
    # Every annotator that is not a person (AI judges, and reward models once they label pairs) is a judge
    # the report compares with the humans; the filter picks among them.
    ai_condition = "a.kind <> 'human'"
    if flt.ai_judge_ids is not None:
        ai_condition += f" AND a.id IN ({id_list(flt.ai_judge_ids)})"
    aspect_condition = f"AND j.aspect_id IN ({id_list(flt.aspect_ids)})" if flt.aspect_ids is not None else ""
    if not flt.include_rejected:
        aspect_condition += " AND j.rejected_at IS NULL"
    human_condition = "a.kind = 'human'" + (" AND NOT a.is_simulated" if flt.exclude_simulated else "")
    seconds = "j.duration_s" if connection.vendor != "postgresql" else "COALESCE(j.duration_s, 'NaN'::float8)"
    return f"""
        SELECT CAST(j.pair_id AS BIGINT), CAST(j.annotator_id AS BIGINT), CAST(j.aspect_id AS BIGINT),
               CAST(j.trial AS SMALLINT),
               CAST(CASE j.choice WHEN 'A' THEN 0 WHEN 'tie' THEN 1 ELSE 2 END AS SMALLINT),
               CAST(CASE j.presented_order WHEN 'AB' THEN 1 ELSE 0 END AS SMALLINT),
               {seconds}
        FROM annotate_judgment j
        JOIN annotate_pair p ON p.id = j.pair_id
        JOIN annotate_annotator a ON a.id = j.annotator_id
        WHERE p.campaign_id IN ({id_list(flt.campaign_ids)}) {aspect_condition}
          AND (({human_condition} AND a.status IN ({", ".join(human_statuses)})) OR ({ai_condition}))
    """


def _rows_postgresql(sql: str) -> dict[str, np.ndarray]:
    buffer = bytearray()
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)") as copy:
            for block in copy:
                buffer += block
    if not buffer.startswith(_BINARY_SIGNATURE):
        raise RuntimeError("unexpected COPY BINARY header")
    extension = int.from_bytes(buffer[15:19], "big")
    body = memoryview(buffer)[19 + extension : len(buffer) - 2]  # header, then the int16 -1 trailer
    rows = np.frombuffer(body, dtype=_BINARY_ROW)
    lengths = [rows[f"{name}_len"] for name in _COLUMNS]
    expected = [8, 8, 8, 2, 2, 2, 8]
    if rows.size and (
        (rows["n_fields"] != len(_COLUMNS)).any()
        or any((got != want).any() for got, want in zip(lengths, expected, strict=True))
    ):
        raise RuntimeError("COPY BINARY rows are not fixed-width; a column was NULL or of another type")
    return {name: rows[name] for name in _COLUMNS}


def _rows_fetchmany(sql: str) -> dict[str, np.ndarray]:
    blocks: list[np.ndarray] = []
    with connection.cursor() as cursor:
        cursor.execute(sql)
        while batch := cursor.fetchmany(FETCH_BATCH):
            blocks.append(np.array(batch, dtype=np.float64))  # None (no duration) becomes NaN
    table = np.concatenate(blocks) if blocks else np.zeros((0, len(_COLUMNS)))
    return {name: table[:, k] for k, name in enumerate(_COLUMNS)}


def dense_index(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct ids and each entry's index into them (numpy.unique, via a lookup table when dense)."""
    ids = ids.astype(np.int64, copy=False)
    if ids.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    low, high = int(ids.min()), int(ids.max())
    span = high - low + 1
    if span > 4 * ids.size + 1024:
        distinct, inverse = np.unique(ids, return_inverse=True)
        return distinct, inverse.astype(np.int64)
    present = np.zeros(span, dtype=bool)
    present[ids - low] = True
    lookup = np.cumsum(present, dtype=np.int64) - 1
    return np.flatnonzero(present) + low, lookup[ids - low]


def judgment_arrays(*, flt: JudgmentFilter) -> JudgmentArrays:
    """The filtered judgments of the given campaigns as long-format numpy arrays."""
    sql = _judgment_sql(flt)
    rows = _rows_postgresql(sql) if connection.vendor == "postgresql" else _rows_fetchmany(sql)
    pair_ids, item = dense_index(rows["pair"])
    annotator_ids, judge = dense_index(rows["annotator"])
    aspect_ids, aspect = dense_index(rows["aspect"])
    return JudgmentArrays(
        item=item,
        judge=judge,
        aspect=aspect,
        trial=rows["trial"].astype(np.int16),
        choice=rows["choice"].astype(np.int8),
        a_first=rows["a_first"].astype(bool),
        seconds=rows["seconds"].astype(np.float64),
        pair_ids=pair_ids,
        annotator_ids=annotator_ids,
        aspect_ids=aspect_ids,
    )


def pair_arrays(*, pair_ids: np.ndarray, campaign_ids: Sequence[int]) -> PairArrays:
    """Generators of each pair's two images and gold answers, aligned with ``pair_ids`` (sorted)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT p.id, ia.generator_id, ib.generator_id
            FROM annotate_pair p
            JOIN annotate_image ia ON ia.id = p.image_a_id
            JOIN annotate_image ib ON ib.id = p.image_b_id
            WHERE p.campaign_id IN ({}) ORDER BY p.id
            """.format(", ".join("%s" for _ in campaign_ids) or "NULL"),
            [int(c) for c in campaign_ids],
        )
        table = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 3)
    position = np.searchsorted(table[:, 0], pair_ids)
    if pair_ids.size and ((position >= len(table)).any() or not np.array_equal(table[position, 0], pair_ids)):
        raise RuntimeError("judged pairs missing from the pair table")
    generator_ids, gens = dense_index(np.concatenate([table[position, 1], table[position, 2]]))
    gen_a, gen_b = gens[: pair_ids.size], gens[pair_ids.size :]

    gold: dict[str, np.ndarray] = {}
    gold_rows = Pair.objects.filter(campaign_id__in=campaign_ids, is_gold=True).values_list(
        "id", "gold_answers"
    )
    codes = {"A": 0, "tie": 1, "B": 2}
    is_gold = np.zeros(pair_ids.size, dtype=bool)
    for pair_id, answers in gold_rows:
        index = int(np.searchsorted(pair_ids, pair_id))
        if index >= pair_ids.size or pair_ids[index] != pair_id:
            continue  # a gold pair nobody judged under this filter
        is_gold[index] = True
        for key, answer in (answers or {}).items():
            if answer in codes:
                gold.setdefault(key, np.full(pair_ids.size, -1, dtype=np.int64))[index] = codes[answer]
    return PairArrays(gen_a=gen_a, gen_b=gen_b, generator_ids=generator_ids, gold=gold, is_gold=is_gold)


def annotators_by_id(ids: Sequence[int]) -> dict[int, Annotator]:
    """Annotator rows by id, with their AI judge configuration."""
    return {a.pk: a for a in Annotator.objects.filter(pk__in=list(ids)).select_related("ai_judge")}


def generators_by_id(ids: Sequence[int]) -> dict[int, Generator]:
    """Generator rows by id."""
    return {g.pk: g for g in Generator.objects.filter(pk__in=list(ids))}


def aspects_by_id(ids: Sequence[int]) -> dict[int, Aspect]:
    """Aspect rows by id."""
    return {a.pk: a for a in Aspect.objects.filter(pk__in=list(ids))}


def ai_judges_of(*, campaigns: Sequence[Campaign]) -> list[Annotator]:
    """Non-human annotators (AI judges, reward models) with a judgment in the campaigns (the judge filter)."""
    # EXISTS stops at the first judgment per annotator, instead of joining every judgment.
    judged = Judgment.objects.filter(annotator=OuterRef("pk"), pair__campaign__in=list(campaigns))
    return list(Annotator.objects.filter(Exists(judged)).exclude(kind=Annotator.Kind.HUMAN).order_by("name"))


@dataclass(frozen=True)
class Staleness:
    """What changed in a report's campaigns since it was computed: new judgments and new rejections."""

    new: int
    rejected: int

    @property
    def changes(self) -> int:
        """All changes since the report."""
        return self.new + self.rejected


def judgments_since(*, campaign_ids: Sequence[int], since: Any) -> Staleness:
    """Judgments added to, and judgments rejected in, these campaigns after `since` (a report's time)."""
    judgments = Judgment.objects.filter(pair__campaign_id__in=list(campaign_ids))
    return Staleness(
        new=judgments.filter(created_at__gt=since).count(),
        rejected=judgments.filter(rejected_at__gt=since).count(),
    )
