"""Data sets in and out: Pick-a-Pic imports and Diffusion-DPO parquet exports, as jobs.

**Import** (``dataset_import`` job). The file (a parquet shard saved in storage under ``imports/``) is read
twice, streaming in record batches. Pass one checks everything without storing anything: the schema,
every row's labels, and every image through the image ingestion checks (``image_check``); the first
problem fails the job with an error naming the row and field, and nothing is stored. Pass two writes
batch by batch, one transaction per batch, and saves the next row in the job's state after each commit,
so a worker crash resumes where it stopped. Every write is idempotent (prompts by text, images by
sha256, pairs by campaign and images, judgments by pair, annotator, aspect and trial), so running the
same import again changes nothing.

Each original rater (``user_id``) becomes an *imported annotator*: a human annotator tied to an inactive
user account that cannot sign in, ``platform="import"`` and ``external_id="<data set>:<rater>"``. Reports
then treat them as people (human-human agreement works), and an AI judge run on the same pairs is
measured against them. Without rater ids, one annotator stands for the whole data set.

**Export** (``dataset_export`` job, format ``dpo_parquet``). One row per pair and aspect with a label
from the chosen source: the human majority, one AI judge, or their consensus (the pairs where the AI
judge agrees with the strict human majority). Filters: campaigns, aspects, minimum human agreement
(share of the humans on the pair who chose the majority's answer), flagged workers (left out unless
asked), gold pairs (left out unless asked). Ties are dropped (default; the diffusers DPO script reads
0.5 as "jpg_0 wins") or written as 0.5/0.5. Images go in as their stored bytes or as storage names.
``jpg_0`` is the image with the smaller sha256, so the file does not depend on database ids and an
export imported into an empty database exports to the same table. Rows are streamed to a temporary
parquet file in record batches and saved with Django's storage API (local media or S3).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import tempfile
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Q

from annotate.models import Annotator, Aspect, Campaign, Generator, Image, Judgment, Pair, Prompt
from annotate.services.images import (
    CheckedImage,
    ImageRejected,
    ImageToIngest,
    image_check,
    images_ingest_many,
)
from annotate.services.prompts import prompt_text_key
from core.jobs import JobContext
from pipeline.datasets import DatasetError
from pipeline.datasets.hpd import hpd_count, hpd_read
from pipeline.datasets.imagereward import imagereward_count, imagereward_read
from pipeline.datasets.mapped import mapped_count, mapped_read
from pipeline.datasets.pickapic import DpoWriter, PickRow, pickapic_count, pickapic_read
from pipeline.models import AIJudgeConfig

IMPORT_PLATFORM = "import"
IMPORT_BATCH_ROWS = 500
EXPORT_PAIR_CHUNK = 2000
LABEL_SOURCES = ("human_majority", "ai", "consensus")
TIE_MODES = ("drop", "half")
IMAGE_MODES = ("bytes", "paths")
EXPORT_FORMATS = ("dpo_parquet", "hf_datasets", "visionprefer_jsonl", "imagereward")
IMPORT_FORMATS = ("pickapic", "imagereward", "hpdv2", "mapped")


# --- import ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def local_file(name: str) -> Iterator[Path]:
    """A local path to storage file `name`: the file itself on local storage, else a temporary copy."""
    try:
        yield Path(default_storage.path(name))
        return
    except NotImplementedError:
        pass
    with tempfile.NamedTemporaryFile(suffix=Path(name).suffix) as tmp:
        with default_storage.open(name, "rb") as source:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                tmp.write(chunk)
        tmp.flush()
        yield Path(tmp.name)


def imported_annotators(*, dataset: str, raters: Iterable[str]) -> dict[str, int]:
    """The human annotators standing for original raters of an imported data set: rater -> annotator id.

    Created once each, in bulk: an inactive user that cannot sign in (unusable password) and a human
    annotator with ``platform="import"``, ``external_id="<data set>:<rater>"``.
    """
    wanted = {rater: f"{dataset}:{rater}"[:128] for rater in raters}
    found = dict(
        Annotator.objects.filter(platform=IMPORT_PLATFORM, external_id__in=list(wanted.values())).values_list(
            "external_id", "pk"
        )
    )
    missing = {rater: ext for rater, ext in wanted.items() if ext not in found}
    if missing:
        user_model = get_user_model()
        usernames = {ext: f"imported-{ext}"[:150] for ext in missing.values()}
        user_model.objects.bulk_create(
            [
                user_model(username=name, is_active=False, password=make_password(None))
                for name in usernames.values()
            ],
            ignore_conflicts=True,
        )
        users = dict(
            user_model.objects.filter(username__in=list(usernames.values())).values_list("username", "pk")
        )
        Annotator.objects.bulk_create(
            [
                Annotator(
                    kind=Annotator.Kind.HUMAN,
                    user_id=users[usernames[ext]],
                    name=f"{dataset} rater {rater}"[:200],
                    platform=IMPORT_PLATFORM,
                    external_id=ext,
                )
                for rater, ext in missing.items()
            ],
            ignore_conflicts=True,
        )
        found = dict(
            Annotator.objects.filter(
                platform=IMPORT_PLATFORM, external_id__in=list(wanted.values())
            ).values_list("external_id", "pk")
        )
    return {rater: found[ext] for rater, ext in wanted.items()}


def aspect_for_import(key: str) -> Aspect:
    """The aspect an imported label answers; an unknown key becomes a new aspect of that name."""
    aspect, _ = Aspect.objects.get_or_create(
        key=key,
        defaults={
            "name": key.replace("_", " ").capitalize(),
            "question": "Which image do you prefer overall?"
            if key == "overall"
            else f"Which image is better ({key})?",
            "order": 100,
        },
    )
    return aspect


#: Pass one remembers what image_check learned per sha256 (format, width, height), so pass two only hashes
#: the bytes again; at most this many images (about 150 bytes each). A resumed run checks again in full.
CHECKED_CACHE_MAX = 300_000


def _checked_row(row: PickRow, known: dict[str, tuple[str, int, int]] | None = None) -> tuple[Any, Any]:
    checked = []
    for column, data in (("jpg_0", row.jpg_0), ("jpg_1", row.jpg_1)):
        sha = hashlib.sha256(data).hexdigest() if known else ""
        if known and sha in known:
            checked.append(CheckedImage(data, sha, *known[sha]))
            continue
        try:
            result = image_check(data=data, filename="")
        except ImageRejected as exc:
            raise DatasetError(str(exc), row=row.row, field=column) from exc
        if known is not None and len(known) < CHECKED_CACHE_MAX:
            known[result.sha256] = (result.format, result.width, result.height)
        checked.append(result)
    if checked[0].sha256 == checked[1].sha256:
        raise DatasetError("jpg_0 and jpg_1 are the same image", row=row.row, field="jpg_1")
    return checked[0], checked[1]


def _reader(fmt: str, mapping: dict[str, str] | None = None) -> tuple[Any, Any, int]:
    """The format's (count, read, batch size): Pick-a-Pic counts file rows, ImageReward counts records."""
    if fmt == "mapped":
        columns = dict(mapping or {})
        return (
            lambda path: mapped_count(path, columns),
            lambda path, **kw: mapped_read(path, columns, **kw),
            IMPORT_BATCH_ROWS,
        )
    if fmt == "imagereward":
        return imagereward_count, imagereward_read, max(1, IMPORT_BATCH_ROWS // 10)
    if fmt == "hpdv2":
        return hpd_count, hpd_read, max(1, IMPORT_BATCH_ROWS // 10)
    return pickapic_count, pickapic_read, IMPORT_BATCH_ROWS


def pickapic_validate(
    path: Path,
    ctx: JobContext | None = None,
    known: dict[str, tuple[str, int, int]] | None = None,
    fmt: str = "pickapic",
    mapping: dict[str, str] | None = None,
) -> int:
    """Pass one: check every row and image; returns the number of labelled rows. Stores nothing."""
    n = 0
    done = 0
    _, read, batch_rows = _reader(fmt, mapping)
    for batch in read(path, batch_rows=batch_rows):
        for row in batch.rows:
            _checked_row(row, known)
        n += len(batch.rows)
        if ctx is not None:
            ctx.advance(batch.end - done)
            ctx.check_cancelled()
        done = batch.end
    if n == 0:
        raise DatasetError("the file holds no labelled rows")
    return n


@dataclass
class _ImportCaches:
    generators: dict[str, int]
    annotators: dict[str, int]
    aspects: dict[str, Aspect]
    checked: dict[str, tuple[str, int, int]]


def _prompts_for(captions: Iterable[str], campaign: Campaign) -> dict[str, int]:
    keys = {prompt_text_key(c): " ".join(c.split()) for c in captions}
    found = dict(Prompt.objects.filter(text_sha256__in=list(keys)).values_list("text_sha256", "id"))
    missing = [
        Prompt(text=text, text_sha256=key, source="dataset") for key, text in keys.items() if key not in found
    ]
    if missing:
        Prompt.objects.bulk_create(missing, ignore_conflicts=True)
        found = dict(Prompt.objects.filter(text_sha256__in=list(keys)).values_list("text_sha256", "id"))
    campaign.prompts.add(*found.values())
    return {c: found[prompt_text_key(c)] for c in captions}


def _rater(row: PickRow) -> str:
    return row.user_id or row.label_source or "all"


def _pickapic_write_batch(
    rows: list[PickRow], *, campaign: Campaign, dataset: str, default_aspect: str, caches: _ImportCaches
) -> int:
    """Write one batch of checked rows (idempotent: a re-run of the batch adds nothing)."""
    prompts = _prompts_for({r.caption for r in rows}, campaign)
    items: list[ImageToIngest] = []
    sides: list[tuple[str, str]] = []
    for row in rows:
        first, second = _checked_row(row, caches.checked)
        for checked, model, uid in ((first, row.model_0, row.uid_0), (second, row.model_1, row.uid_1)):
            name = model or dataset
            if name not in caches.generators:
                caches.generators[name] = Generator.objects.get_or_create(
                    name=name[:100], defaults={"kind": Generator.Kind.IMPORTED}
                )[0].pk
            params = {"source": dataset, "uid": uid} if uid else {"source": dataset}
            items.append(ImageToIngest(checked, caches.generators[name], prompts[row.caption], params))
        sides.append((first.sha256, second.sha256))
    ids = images_ingest_many(items)
    new_raters = {_rater(row) for row in rows} - set(caches.annotators)
    if new_raters:
        caches.annotators.update(imported_annotators(dataset=dataset, raters=new_raters))
    pairs = []
    for row, (sha_0, sha_1) in zip(rows, sides, strict=True):
        a, b = sorted((ids[sha_0], ids[sha_1]))
        pairs.append(Pair(campaign=campaign, prompt_id=prompts[row.caption], image_a_id=a, image_b_id=b))
    Pair.objects.bulk_create(pairs, ignore_conflicts=True)
    pair_ids = {
        (a, b): pk
        for pk, a, b in Pair.objects.filter(
            campaign=campaign,
            image_a_id__in={p.image_a_id for p in pairs},
            image_b_id__in={p.image_b_id for p in pairs},
        ).values_list("pk", "image_a_id", "image_b_id")
    }
    judgments = []
    for row, (sha_0, sha_1) in zip(rows, sides, strict=True):
        id_0, id_1 = ids[sha_0], ids[sha_1]
        zero_is_a = id_0 < id_1
        rater = _rater(row)
        key = row.aspect or default_aspect
        if key not in caches.aspects:
            caches.aspects[key] = aspect_for_import(key)
            campaign.aspects.add(caches.aspects[key])
        side = row.choice
        choice = "tie" if side == "tie" else ("A" if (side == "0") == zero_is_a else "B")
        judgments.append(
            Judgment(
                pair_id=pair_ids[(min(id_0, id_1), max(id_0, id_1))],
                annotator_id=caches.annotators[rater],
                aspect=caches.aspects[key],
                choice=choice,
                presented_order="AB" if zero_is_a else "BA",
            )
        )
    Judgment.objects.bulk_create(judgments, ignore_conflicts=True)
    return len(rows)


def campaign_for_import(*, campaign_id: int | None, campaign_name: str) -> Campaign:
    """The campaign an import writes to: the given one, or a draft campaign of that name (created once)."""
    if campaign_id:
        return Campaign.objects.get(pk=campaign_id)
    from django.utils.text import slugify

    name = campaign_name.strip() or "Imported data set"
    campaign, _ = Campaign.objects.get_or_create(
        name=name[:200], defaults={"slug": slugify(name)[:190] or "imported", "status": Campaign.Status.DRAFT}
    )
    return campaign


def dataset_import_job(ctx: JobContext) -> dict[str, Any]:
    """The ``dataset_import`` job: validate the whole file, then write it batch by batch (resumable)."""
    params = ctx.params
    if params.format not in IMPORT_FORMATS:
        raise DatasetError(f"unknown import format {params.format!r}; formats: {', '.join(IMPORT_FORMATS)}")
    dataset = params.dataset_name or Path(params.source_name).stem
    with local_file(params.source_name) as path:
        count, read, batch_rows = _reader(params.format, params.columns)
        total_rows = count(path)
        known: dict[str, tuple[str, int, int]] = {}
        if not ctx.state.get("validated"):
            ctx.set_progress(0, 2 * total_rows)
            ctx.log(f"checking {total_rows:,} rows of {Path(params.source_name).name}")
            labelled = pickapic_validate(path, ctx, known, params.format, params.columns)
            campaign = campaign_for_import(campaign_id=params.campaign_id, campaign_name=params.campaign_name)
            ctx.save_state(validated=True, labelled=labelled, campaign_id=campaign.pk, next_row=0, written=0)
        campaign = Campaign.objects.get(pk=ctx.state["campaign_id"])
        next_row, written = int(ctx.state["next_row"]), int(ctx.state["written"])
        ctx.set_progress(total_rows + next_row, 2 * total_rows)
        caches = _ImportCaches({}, {}, {}, known)
        for batch in read(path, batch_rows=batch_rows, start_row=next_row):
            ctx.check_cancelled()
            if batch.rows:
                with transaction.atomic():
                    written += _pickapic_write_batch(
                        batch.rows,
                        campaign=campaign,
                        dataset=dataset,
                        default_aspect=params.aspect,
                        caches=caches,
                    )
            next_row = batch.end
            ctx.save_state(next_row=next_row, written=written)
            ctx.set_progress(total_rows + next_row, 2 * total_rows)
    ctx.set_progress(2 * total_rows, 2 * total_rows)
    counts = {
        "campaign_id": campaign.pk,
        "rows": written,
        "pairs": Pair.objects.filter(campaign=campaign).count(),
        "judgments": Judgment.objects.filter(pair__campaign=campaign).count(),
    }
    ctx.log(f"imported {written:,} labelled rows into {campaign.name}")
    return counts


# --- export ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HumanVotes:
    a: int
    b: int
    tie: int

    @property
    def total(self) -> int:
        return self.a + self.b + self.tie

    @property
    def majority(self) -> str | None:
        """The strict majority: the answer with more votes than each other answer; None without one."""
        ranked = sorted((("A", self.a), ("B", self.b), ("tie", self.tie)), key=lambda kv: -kv[1])
        if ranked[0][1] == 0 or ranked[0][1] == ranked[1][1]:
            return None
        return ranked[0][0]

    @property
    def agreement(self) -> float:
        return max(self.a, self.b, self.tie) / self.total if self.total else 0.0


def _human_votes(
    pair_ids: list[int], aspect_keys: list[str], include_flagged: bool
) -> dict[tuple[int, str], HumanVotes]:
    statuses = [Annotator.Status.ACTIVE] + ([Annotator.Status.FLAGGED] if include_flagged else [])
    rows = (
        Judgment.objects.filter(
            pair_id__in=pair_ids,
            aspect__key__in=aspect_keys,
            annotator__kind=Annotator.Kind.HUMAN,
            annotator__status__in=statuses,
            rejected_at__isnull=True,
        )
        .values("pair_id", "aspect__key")
        .annotate(
            a=Count("pk", filter=Q(choice="A")),
            b=Count("pk", filter=Q(choice="B")),
            t=Count("pk", filter=Q(choice="tie")),
        )
    )
    return {(r["pair_id"], r["aspect__key"]): HumanVotes(r["a"], r["b"], r["t"]) for r in rows}


def _ai_choices(pair_ids: list[int], aspect_keys: list[str], annotator_id: int) -> dict[tuple[int, str], str]:
    rows = Judgment.objects.filter(
        pair_id__in=pair_ids,
        aspect__key__in=aspect_keys,
        annotator_id=annotator_id,
        trial=1,
        rejected_at__isnull=True,
    ).values_list("pair_id", "aspect__key", "choice")
    return {(p, a): c for p, a, c in rows}


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as handle:
        return handle.read()


def dpo_rows(params: Any, *, on_chunk: Any = None) -> Iterator[dict[str, Any]]:
    """The export's rows, streamed: pairs in id order in chunks, one row per pair and aspect with a label."""
    if params.label_source not in LABEL_SOURCES:
        raise ValueError(f"unknown label source {params.label_source!r}; choose {', '.join(LABEL_SOURCES)}")
    if params.ties not in TIE_MODES:
        raise ValueError(f"ties must be one of {', '.join(TIE_MODES)}")
    if params.images not in IMAGE_MODES:
        raise ValueError(f"images must be one of {', '.join(IMAGE_MODES)}")
    judge_annotator = None
    source_name = params.label_source
    if params.label_source != "human_majority":
        judge = AIJudgeConfig.objects.filter(pk=params.judge_id).first()
        if judge is None or judge.annotator_id is None:
            raise ValueError("an AI label source needs an AI judge that has labelled pairs (judge_id)")
        judge_annotator = judge.annotator_id
        source_name = f"{params.label_source}:{judge.name}"
    pairs = Pair.objects.filter(campaign_id__in=params.campaign_ids)
    if not params.include_gold:
        pairs = pairs.filter(is_gold=False)
    aspect_keys = list(params.aspect_keys) or sorted(
        set(Aspect.objects.filter(campaigns__in=params.campaign_ids).values_list("key", flat=True))
    )
    aspect_keys = sorted(aspect_keys)
    columns = (
        "pk", "prompt__text", "image_a__file", "image_a__sha256", "image_a__generator__name",
        "image_b__file", "image_b__sha256", "image_b__generator__name",
    )  # fmt: skip
    stream = pairs.order_by("pk").values_list(*columns).iterator(chunk_size=EXPORT_PAIR_CHUNK)
    need_humans = params.label_source != "ai" or params.min_human_agreement > 0
    while chunk := list(itertools.islice(stream, EXPORT_PAIR_CHUNK)):
        ids = [c[0] for c in chunk]
        votes = _human_votes(ids, aspect_keys, params.include_flagged) if need_humans else {}
        ai = _ai_choices(ids, aspect_keys, judge_annotator) if judge_annotator else {}
        for pk, caption, file_a, sha_a, gen_a, file_b, sha_b, gen_b in chunk:
            for aspect in aspect_keys:
                human = votes.get((pk, aspect))
                majority = human.majority if human else None
                if params.min_human_agreement > 0 and (
                    majority is None or human is None or human.agreement < params.min_human_agreement
                ):
                    continue
                if params.label_source == "human_majority":
                    choice = majority
                elif params.label_source == "ai":
                    choice = ai.get((pk, aspect))
                else:
                    choice = ai.get((pk, aspect))
                    if choice is None or choice != majority:
                        continue
                if choice is None or (choice == "tie" and params.ties == "drop"):
                    continue
                a_first = sha_a < sha_b
                first, second = (
                    ((file_a, gen_a), (file_b, gen_b)) if a_first else ((file_b, gen_b), (file_a, gen_a))
                )
                label_0 = 0.5 if choice == "tie" else float((choice == "A") == a_first)
                yield {
                    "caption": caption,
                    "jpg_0": _read(first[0]) if params.images == "bytes" else first[0],
                    "jpg_1": _read(second[0]) if params.images == "bytes" else second[0],
                    "label_0": label_0,
                    "label_1": 1.0 - label_0,
                    "model_0": first[1],
                    "model_1": second[1],
                    "aspect": aspect,
                    "label_source": source_name,
                }
        if on_chunk is not None:
            on_chunk(len(chunk))


def _hf_features(paths: bool) -> Any:
    import datasets

    image = datasets.Value("string") if paths else datasets.Image()
    return datasets.Features(
        {
            "caption": datasets.Value("string"),
            "jpg_0": image,
            "jpg_1": image,
            "label_0": datasets.Value("float64"),
            "label_1": datasets.Value("float64"),
            "model_0": datasets.Value("string"),
            "model_1": datasets.Value("string"),
            "aspect": datasets.Value("string"),
            "label_source": datasets.Value("string"),
        }
    )


def _write_hf_folder(params: Any, folder: Path, on_chunk: Any) -> int:
    """The rows as a Hugging Face ``datasets`` folder (``save_to_disk``) with Image features, zipped after.

    ``Dataset.from_generator`` writes arrow shards as the rows stream in (its cache lives in a temporary
    folder), so the rows are never all in memory."""
    import datasets

    paths = params.images == "paths"
    count = {"rows": 0}

    def rows() -> Iterator[dict[str, Any]]:
        for row in dpo_rows(params, on_chunk=on_chunk):
            count["rows"] += 1
            if not paths:
                row = {
                    **row,
                    "jpg_0": {"bytes": row["jpg_0"], "path": None},
                    "jpg_1": {"bytes": row["jpg_1"], "path": None},
                }
            yield row

    with tempfile.TemporaryDirectory() as cache:
        table = datasets.Dataset.from_generator(rows, features=_hf_features(paths), cache_dir=cache)
        table.save_to_disk(str(folder))
    return count["rows"]


def visionprefer_records(params: Any, *, on_chunk: Any = None) -> Iterator[dict[str, Any]]:
    """One record per prompt of the campaigns: its images, and per judge and aspect the per-image scores,
    the ranking (best first, by pairwise wins with a tie worth half) and the rationales.

    Judges are the AI judges and reward models by name, and ``human_majority`` (each pair's strict human
    majority). Images are listed by sha256, so the record does not depend on database ids."""
    prompts = (
        Prompt.objects.filter(pairs__campaign_id__in=params.campaign_ids)
        .distinct()
        .order_by("pk")
        .values_list("pk", "text", "source_id")
    )
    stream = prompts.iterator(chunk_size=500)
    aspect_filter = {"aspect__key__in": list(params.aspect_keys)} if params.aspect_keys else {}
    while chunk := list(itertools.islice(stream, 500)):
        ids = [c[0] for c in chunk]
        pairs = Pair.objects.filter(campaign_id__in=params.campaign_ids, prompt_id__in=ids)
        if not params.include_gold:
            pairs = pairs.filter(is_gold=False)
        images: dict[int, dict[int, dict[str, Any]]] = {pk: {} for pk in ids}
        pair_rows = list(pairs.values_list("pk", "prompt_id", "image_a_id", "image_b_id"))
        image_ids = {i for _, _, a, b in pair_rows for i in (a, b)}
        prompt_of = {i: p for _, p, a, b in pair_rows for i in (a, b)}
        for pk, name, sha, gen, seed in Image.objects.filter(pk__in=list(image_ids)).values_list(
            "pk", "file", "sha256", "generator__name", "seed"
        ):
            images[prompt_of[pk]][pk] = {"path": name, "sha256": sha, "generator": gen, "seed": seed}
        pair_of = {pk: (p, a, b) for pk, p, a, b in pair_rows}
        verdicts: dict[tuple[int, str, str], list[tuple[int, int, str, float | None, float | None, str]]] = {}
        statuses = [Annotator.Status.ACTIVE] + ([Annotator.Status.FLAGGED] if params.include_flagged else [])
        rows = Judgment.objects.filter(
            pair_id__in=list(pair_of), trial=1, rejected_at__isnull=True, **aspect_filter
        )
        human_votes: dict[tuple[int, str], list[int]] = {}
        for pair_id, aspect, kind, name, status, choice, sa, sb, rationale in rows.order_by("pk").values_list(
            "pair_id",
            "aspect__key",
            "annotator__kind",
            "annotator__name",
            "annotator__status",
            "choice",
            "score_a",
            "score_b",
            "rationale",
        ):
            prompt_id, a, b = pair_of[pair_id]
            if kind == Annotator.Kind.HUMAN:
                if status in statuses:
                    votes = human_votes.setdefault((pair_id, aspect), [0, 0, 0])
                    votes[("A", "B", "tie").index(choice)] += 1
                continue
            verdicts.setdefault((prompt_id, name, aspect), []).append((a, b, choice, sa, sb, rationale))
        for (pair_id, aspect), (va, vb, vt) in human_votes.items():
            majority = HumanVotes(va, vb, vt).majority
            if majority is not None:
                prompt_id, a, b = pair_of[pair_id]
                verdicts.setdefault((prompt_id, "human_majority", aspect), []).append(
                    (a, b, majority, None, None, "")
                )
        for pk, text, source_id in chunk:
            order = sorted(images[pk], key=lambda i: images[pk][i]["sha256"])
            if not order:
                continue
            index = {image_id: n for n, image_id in enumerate(order)}
            judges: dict[str, dict[str, Any]] = {}
            for (prompt_id, judge, aspect), items in sorted(
                verdicts.items(), key=lambda kv: (kv[0][1], kv[0][2])
            ):
                if prompt_id != pk:
                    continue
                wins = [0.0] * len(order)
                score_sum = [0.0] * len(order)
                score_n = [0] * len(order)
                rationales = []
                for a, b, choice, sa, sb, rationale in items:
                    ia, ib = index[a], index[b]
                    if choice == "tie":
                        wins[ia] += 0.5
                        wins[ib] += 0.5
                    else:
                        wins[ia if choice == "A" else ib] += 1
                    for i, score in ((ia, sa), (ib, sb)):
                        if score is not None:
                            score_sum[i] += score
                            score_n[i] += 1
                    if rationale:
                        first, second = sorted((ia, ib))
                        winner = "tie" if choice == "tie" else (ia if choice == "A" else ib)
                        rationales.append(
                            {"images": [first, second], "winner": winner, "rationale": rationale}
                        )
                judges.setdefault(judge, {})[aspect] = {
                    "scores": [score_sum[i] / score_n[i] if score_n[i] else None for i in range(len(order))],
                    "ranking": sorted(range(len(order)), key=lambda i: (-wins[i], i)),
                    "wins": wins,
                    "rationales": rationales,
                }
            yield {
                "prompt_id": source_id or str(pk),
                "prompt": text,
                "images": [images[pk][i] for i in order],
                "judges": judges,
            }
        if on_chunk is not None:
            on_chunk(len(chunk))


def _write_imagereward(params: Any, tmp: Path, on_chunk: Any) -> int:
    """ImageReward's layout in a zip, one folder per aspect: ``<aspect>/test.json`` (records ``id``,
    ``prompt``, ``generations``, ``ranking``: 1 is best, equal wins give equal ranks) and its images beside
    it in ``<aspect>/images/<sha256>.<ext>`` (a folder imports on its own, so images repeat per aspect). The ranking comes from the label source's pairwise wins
    (``human_majority``, or the judge's name for ``ai``)."""
    judge_name = "human_majority"
    if params.label_source == "consensus":
        raise ValueError("the ImageReward export ranks by one source: the human majority or one AI judge")
    if params.label_source != "human_majority":
        judge = AIJudgeConfig.objects.filter(pk=params.judge_id).select_related("annotator").first()
        if judge is None or judge.annotator is None:
            raise ValueError("an AI label source needs an AI judge that has labelled pairs (judge_id)")
        judge_name = judge.annotator.name
    by_aspect: dict[str, list[dict[str, Any]]] = {}
    written: set[str] = set()
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for record in visionprefer_records(params, on_chunk=on_chunk):
            for aspect, verdict in record["judges"].get(judge_name, {}).items():
                names = []
                for image in record["images"]:
                    name = f"images/{image['sha256']}{Path(image['path']).suffix}"
                    if f"{aspect}/{name}" not in written:
                        archive.writestr(f"{aspect}/{name}", _read(image["path"]))
                        written.add(f"{aspect}/{name}")
                    names.append(name)
                wins = verdict["wins"]
                ranks = [1 + sum(1 for w in wins if w > wins[i]) for i in range(len(names))]
                by_aspect.setdefault(aspect, []).append(
                    {
                        "id": record["prompt_id"],
                        "prompt": record["prompt"],
                        "generations": names,
                        "ranking": ranks,
                    }
                )
        for aspect, records in sorted(by_aspect.items()):
            archive.writestr(f"{aspect}/test.json", json.dumps(records, ensure_ascii=False, indent=1))
    return sum(len(r) for r in by_aspect.values())


def dataset_export_job(ctx: JobContext) -> dict[str, Any]:
    """The ``dataset_export`` job: stream the rows to a temporary file, then save it in storage.

    ``dpo_parquet`` is one parquet file; ``hf_datasets`` is a ``save_to_disk`` folder stored as one zip
    (unzip it and ``datasets.load_from_disk`` the folder)."""
    params = ctx.params
    if params.format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {params.format!r}; formats: {', '.join(EXPORT_FORMATS)}")
    total = Pair.objects.filter(campaign_id__in=params.campaign_ids).count()
    ctx.set_progress(0, total)

    def chunk_done(n: int) -> None:
        ctx.advance(n)
        ctx.check_cancelled()

    stem = params.filename or {"dpo_parquet": "dpo", "hf_datasets": "hf-dataset"}.get(
        params.format, "visionprefer"
    )
    suffix = {"dpo_parquet": ".parquet", "hf_datasets": ".zip"}.get(params.format, ".jsonl")
    name = f"exports/{ctx.job_id}/{stem}{suffix}"
    if default_storage.exists(name):  # a resumed run writes the whole file again
        default_storage.delete(name)
    with tempfile.TemporaryDirectory() as work:
        tmp = Path(work) / f"out{suffix}"
        if params.format == "dpo_parquet":
            with DpoWriter(tmp, paths=params.images == "paths") as writer:
                for row in dpo_rows(params, on_chunk=chunk_done):
                    writer.write(row)
            rows = writer.rows
        elif params.format == "imagereward":
            rows = _write_imagereward(params, tmp, chunk_done)
        elif params.format == "visionprefer_jsonl":
            rows = 0
            with tmp.open("w", encoding="utf-8") as out:
                for record in visionprefer_records(params, on_chunk=chunk_done):
                    out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
                    rows += 1
        else:
            folder = Path(work) / stem
            rows = _write_hf_folder(params, folder, chunk_done)
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
                for file in sorted(folder.rglob("*")):
                    if file.is_file():
                        archive.write(file, file.relative_to(folder.parent).as_posix())
        with open(tmp, "rb") as handle:
            stored = default_storage.save(name, File(handle, name=tmp.name))
        size = tmp.stat().st_size
    ctx.log(f"wrote {rows:,} rows ({size:,} bytes) to {stored}")
    return {"file": stored, "rows": rows, "bytes": size, "format": params.format}


def export_files(jobs: Iterable[Any]) -> list[dict[str, Any]]:
    """Finished export jobs with a signed download link each (local media or the object store's own)."""
    out = []
    for job in jobs:
        name = (job.result or {}).get("file")
        if name and default_storage.exists(name):
            out.append({"job": job, "name": name, "url": default_storage.url(name), **(job.result or {})})
    return out


# --- starting jobs -----------------------------------------------------------------------------------


def dataset_import_start(
    *, upload: Any, filename: str, campaign: Campaign | None = None, campaign_name: str = "",
    aspect: str = "overall", dataset_name: str = "", created_by: Any = None, format: str = "",
) -> Any:  # fmt: skip
    """Save an uploaded data set file in storage and queue its import job."""
    from core.jobs import job_create
    from pipeline.jobs import DATASET_IMPORT, DatasetImportParams

    safe = Path(filename).name or "dataset.parquet"
    if not safe.endswith((".parquet", ".zip", ".tar", ".tar.gz", ".tgz")):
        raise DatasetError(f"{safe!r} is neither a .parquet file (Pick-a-Pic) nor a .zip or .tar.gz archive")
    format = format or ("pickapic" if safe.endswith(".parquet") else "imagereward")
    if format not in IMPORT_FORMATS:
        raise DatasetError(f"unknown import format {format!r}; formats: {', '.join(IMPORT_FORMATS)}")
    if (format == "pickapic") != safe.endswith(".parquet"):
        raise DatasetError(
            f"{safe!r} does not fit the {format} format (Pick-a-Pic: .parquet; others: archives)"
        )
    stored = default_storage.save(f"imports/{uuid.uuid4().hex}/{safe}", File(upload, name=safe))
    params = DatasetImportParams(
        source_name=stored,
        format=format,
        campaign_id=campaign.pk if campaign else None,
        campaign_name=campaign_name,
        aspect=aspect or "overall",
        dataset_name=dataset_name or Path(safe).stem,
    )
    return job_create(
        kind=DATASET_IMPORT, params=params, title=f"Import {safe}", campaign=campaign, created_by=created_by
    )


def dataset_export_start(*, params: Any, campaign: Campaign | None = None, created_by: Any = None) -> Any:
    """Check an export's parameters and queue its job."""
    from core.jobs import job_create
    from pipeline.jobs import DATASET_EXPORT

    if not params.campaign_ids:
        raise ValueError("choose at least one campaign to export")
    if params.label_source not in LABEL_SOURCES:
        raise ValueError(f"unknown label source {params.label_source!r}")
    if params.label_source != "human_majority" and not params.judge_id:
        raise ValueError("an AI or consensus export needs an AI judge")
    if not 0.0 <= params.min_human_agreement <= 1.0:
        raise ValueError("minimum human agreement is a share between 0 and 1")
    return job_create(
        kind=DATASET_EXPORT,
        params=params,
        title="Export DPO parquet",
        campaign=campaign,
        created_by=created_by,
    )
