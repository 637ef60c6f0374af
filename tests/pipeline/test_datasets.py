"""Data sets in and out: Pick-a-Pic imports and the Diffusion-DPO parquet export, through the real job code.

The DPO file is checked against the column handling of diffusers' examples/research_projects/diffusion_dpo/
train_diffusion_dpo.py (reimplemented below: `caption`, `jpg_0`/`jpg_1` bytes -> PIL RGB, and the swap
when label_0 == 0 so the preferred image comes first) after loading it with datasets.load_dataset.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from annotate.models import Annotator, Aspect, Campaign, Image, Judgment, Pair, Prompt
from core.jobs import JobContext, job_create, job_run
from core.models import Job
from pipeline.jobs import DATASET_EXPORT, DATASET_IMPORT, DatasetExportParams, DatasetImportParams
from pipeline.models import AIJudgeConfig
from pipeline.services import datasets as datasets_service
from tests.factories import (
    AIAnnotatorFactory,
    HumanAnnotatorFactory,
    ImageFactory,
    JudgmentFactory,
    PairFactory,
    png_bytes,
)
from tests.helpers import fresh
from tests.pipeline.datasets_files import pickapic_row, sample_rows, write_parquet

pytestmark = pytest.mark.django_db


def stored_file(tmp_path, rows, name="shard.parquet", **kwargs) -> str:
    path = write_parquet(tmp_path / name, rows, **kwargs)
    return default_storage.save(f"imports/{name}", ContentFile(path.read_bytes()))


def run_import(source: str, **kwargs) -> Job:
    params = DatasetImportParams(
        source_name=source, campaign_name=kwargs.pop("campaign_name", "Pick import"), **kwargs
    )
    job = job_create(kind=DATASET_IMPORT, params=params)
    job_run(job_id=job.pk)
    return fresh(job.pk)


def run_export(**kwargs) -> tuple[Job, object]:
    job = job_create(kind=DATASET_EXPORT, params=DatasetExportParams(**kwargs))
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED, fresh(job.pk).error
    job = fresh(job.pk)
    with default_storage.open(job.result["file"], "rb") as handle:
        table = pq.read_table(io.BytesIO(handle.read()))
    return job, table


def counts() -> dict[str, int]:
    return {
        "campaigns": Campaign.objects.count(),
        "prompts": Prompt.objects.count(),
        "images": Image.objects.count(),
        "pairs": Pair.objects.count(),
        "judgments": Judgment.objects.count(),
        "annotators": Annotator.objects.count(),
    }


def test_a_pickapic_shard_becomes_prompts_images_pairs_and_one_annotator_per_rater(tmp_path, aspects):
    job = run_import(stored_file(tmp_path, sample_rows()))
    assert job.status == Job.Status.SUCCEEDED, job.error
    campaign = Campaign.objects.get(pk=job.result["campaign_id"])
    assert job.result["rows"] == 5  # the unlabelled row is skipped
    assert set(campaign.prompts.values_list("text", flat=True)) == {"a red fox in snow", "a glass teapot"}
    assert Image.objects.count() == 5  # images 1, 2, 3 (2 shared by two pairs), 4, 5
    assert Pair.objects.filter(campaign=campaign).count() == 3
    raters = Annotator.objects.filter(platform="import")
    assert sorted(raters.values_list("external_id", flat=True)) == ["shard:7", "shard:8", "shard:9"]
    assert all(a.kind == Annotator.Kind.HUMAN and not a.user.is_active for a in raters)
    assert not any(a.user.has_usable_password() for a in raters)
    assert list(campaign.aspects.values_list("key", flat=True)) == ["overall"]
    # The three raters of the fox pair 1-2: two chose jpg_0 (image 1), one chose image 2.
    image_1 = Image.objects.get(params__uid="uid-1")
    fox = (
        Pair.objects.get(campaign=campaign, image_a=image_1)
        if Pair.objects.filter(image_a=image_1).exists()
        else Pair.objects.get(campaign=campaign, image_b=image_1)
    )
    side_of_1 = "A" if fox.image_a_id == image_1.pk else "B"
    choices = sorted(Judgment.objects.filter(pair=fox).values_list("annotator__external_id", "choice"))
    other = "B" if side_of_1 == "A" else "A"
    assert choices == [("shard:7", side_of_1), ("shard:8", other), ("shard:9", side_of_1)]
    assert Judgment.objects.filter(choice="tie").count() == 1
    assert Image.objects.get(params__uid="uid-4").generator.name == "model-1"

    before = counts()
    again = run_import(job.params["source_name"])
    assert again.status == Job.Status.SUCCEEDED, again.error
    assert counts() == before  # a re-run changes nothing


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (
            lambda rows: [{k: v for k, v in r.items() if k != "label_1"} for r in rows],
            "field 'label_1': the column is missing",
        ),
        (
            lambda rows: [
                {**r, "jpg_1": b"<html>not an image</html>"} if i == 2 else r for i, r in enumerate(rows)
            ],
            "row 3, field 'jpg_1'",
        ),
        (
            lambda rows: [{**r, "label_0": 0.7, "label_1": 0.3} if i == 4 else r for i, r in enumerate(rows)],
            "row 5, field 'label_0'",
        ),
        (
            lambda rows: [{**r, "caption": " "} if i == 1 else r for i, r in enumerate(rows)],
            "row 2, field 'caption'",
        ),
    ],
    ids=["missing-column", "not-an-image", "bad-label", "empty-caption"],
)
def test_a_malformed_shard_fails_naming_row_and_field_and_stores_nothing(tmp_path, aspects, mutate, expected):
    import pyarrow as pa

    from tests.pipeline.datasets_files import PICKAPIC_SCHEMA

    rows = mutate(sample_rows())
    schema = pa.schema([f for f in PICKAPIC_SCHEMA if f.name in rows[0]])
    before = counts()
    job = run_import(stored_file(tmp_path, rows, schema=schema))
    assert job.status == Job.Status.FAILED
    assert expected in job.error
    assert counts() == before


def test_wrong_types_and_truncated_files_are_refused_clearly(tmp_path, aspects):
    import pyarrow as pa

    from tests.pipeline.datasets_files import PICKAPIC_SCHEMA

    schema = pa.schema(
        [pa.field("label_0", pa.string()) if f.name == "label_0" else f for f in PICKAPIC_SCHEMA]
    )
    rows = [{**r, "label_0": str(r["label_0"])} for r in sample_rows()]
    before = counts()
    job = run_import(stored_file(tmp_path, rows, schema=schema, name="typed.parquet"))
    assert job.status == Job.Status.FAILED
    assert "field 'label_0': has type string; expected a number" in job.error

    whole = write_parquet(tmp_path / "whole.parquet", sample_rows()).read_bytes()
    cut = default_storage.save("imports/cut.parquet", ContentFile(whole[: len(whole) // 2]))
    job = run_import(cut)
    assert job.status == Job.Status.FAILED
    assert "not a readable parquet file" in job.error
    assert counts() == before


def test_an_interrupted_import_resumes_and_ends_as_a_clean_one(tmp_path, aspects, monkeypatch):
    rows = [pickapic_row(f"prompt {i // 2}", 100 + i, 200 + i, float(i % 2), user=i % 4) for i in range(10)]
    source = stored_file(tmp_path, rows)
    monkeypatch.setattr(datasets_service, "IMPORT_BATCH_ROWS", 3)
    job = job_create(
        kind=DATASET_IMPORT, params=DatasetImportParams(source_name=source, campaign_name="Resumed")
    )
    real = datasets_service._pickapic_write_batch
    calls = {"n": 0}

    def crash_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("worker killed")  # not an Exception: nothing records the failure
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets_service, "_pickapic_write_batch", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        datasets_service.dataset_import_job(JobContext(fresh(job.pk)))
    state = fresh(job.pk).state
    assert state["validated"] and state["next_row"] == 6 and state["written"] == 6
    assert Judgment.objects.count() == 6  # two committed batches, the third rolled back

    result = datasets_service.dataset_import_job(JobContext(fresh(job.pk)))
    assert result["rows"] == 10 and result["judgments"] == 10 and result["pairs"] == 10
    assert Judgment.objects.count() == 10


# --- export ----------------------------------------------------------------------------------------------


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32) / 127.5 - 1.0


def diffusion_dpo_preprocess(examples: dict) -> list[np.ndarray]:
    """train_diffusion_dpo.py's preprocess_train, minus resize/crop/flip: bytes -> RGB, swap on label_0 == 0,
    concatenate on the channel axis (preferred image first)."""
    columns = [[pixels(b) for b in examples[name]] for name in ("jpg_0", "jpg_1")]
    out = []
    for pair, label_0 in zip(zip(*columns, strict=True), examples["label_0"], strict=True):
        if label_0 == 0:
            pair = pair[::-1]
        out.append(np.concatenate(pair, axis=-1))
    return out


@pytest.fixture
def labelled_campaign(aspects):
    """Four pairs, three humans and one AI judge on prompt_following; a gold pair; a flagged worker."""
    aspect = Aspect.objects.get(key="prompt_following")
    humans = [HumanAnnotatorFactory() for _ in range(3)]
    flagged = HumanAnnotatorFactory(status=Annotator.Status.FLAGGED)
    judge = AIAnnotatorFactory()
    first = PairFactory()
    campaign = first.campaign
    pairs = [first, *(PairFactory(campaign=campaign) for _ in range(3))]
    gold = PairFactory(campaign=campaign, is_gold=True, gold_answers={"prompt_following": "A"})
    votes = {0: "AAB", 1: "BBB", 2: "tie tie A", 3: "ABt"}  # pair 3: no majority
    ai = {0: "A", 1: "A", 2: "tie", 3: "B"}
    for i, pair in enumerate(pairs):
        choices = votes[i].split() if " " in votes[i] else list(votes[i])
        for human, choice in zip(humans, choices, strict=True):
            JudgmentFactory(
                pair=pair, annotator=human, aspect=aspect, choice="tie" if choice == "t" else choice
            )
        JudgmentFactory(pair=pair, annotator=judge, aspect=aspect, choice=ai[i])
    # The flagged worker outvotes nobody unless flagged workers are asked for: on pair 0 they make A 3-1.
    JudgmentFactory(pair=pairs[3], annotator=flagged, aspect=aspect, choice="A")
    for human in humans:
        JudgmentFactory(pair=gold, annotator=human, aspect=aspect, choice="A")
    return {"campaign": campaign, "pairs": pairs, "gold": gold, "judge": judge.ai_judge, "aspect": aspect}


def winner_bytes(pair: Pair, choice: str) -> bytes:
    image = pair.image_a if choice == "A" else pair.image_b
    with default_storage.open(image.file.name, "rb") as handle:
        return handle.read()


def test_the_dpo_parquet_goes_through_the_diffusers_preprocessing(labelled_campaign, tmp_path):
    import datasets

    c = labelled_campaign
    job, table = run_export(campaign_ids=[c["campaign"].pk], aspect_keys=["prompt_following"])
    assert table.column_names == [
        "caption", "jpg_0", "jpg_1", "label_0", "label_1", "model_0", "model_1", "aspect", "label_source"
    ]  # fmt: skip
    # Human majority, ties dropped, no majority dropped, gold left out: pairs 0 (A) and 1 (B).
    assert table.num_rows == 2
    path = tmp_path / "dpo.parquet"
    pq.write_table(table, path)
    loaded = datasets.load_dataset("parquet", data_files=str(path), split="train")
    assert loaded.num_rows == 2 and set(loaded["label_source"]) == {"human_majority"}
    batch = loaded[:]
    processed = diffusion_dpo_preprocess(batch)
    for row, combined, (pair, majority) in zip(
        range(2), processed, [(c["pairs"][0], "A"), (c["pairs"][1], "B")], strict=True
    ):
        assert batch["caption"][row] == pair.prompt.text
        assert batch["label_0"][row] + batch["label_1"][row] == 1.0
        np.testing.assert_array_equal(combined[..., :3], pixels(winner_bytes(pair, majority)))
        loser = "B" if majority == "A" else "A"
        np.testing.assert_array_equal(combined[..., 3:], pixels(winner_bytes(pair, loser)))


def test_export_filters_label_sources_ties_gold_and_flagged_workers(labelled_campaign):
    c = labelled_campaign
    base = {"campaign_ids": [c["campaign"].pk], "aspect_keys": ["prompt_following"]}

    def labels(**kwargs) -> list[tuple[str, float]]:
        _, table = run_export(**base, **kwargs)
        return sorted(
            zip(table.column("caption").to_pylist(), table.column("label_0").to_pylist(), strict=True)
        )

    captions = [p.prompt.text for p in c["pairs"]]
    # Ties kept as 0.5: pair 2's majority is a tie.
    assert len(labels(ties="half")) == 3 and any(l0 == 0.5 for _, l0 in labels(ties="half"))
    # The AI judge alone: pairs 0, 1, 3 (pair 2's tie dropped).
    assert {cap for cap, _ in labels(label_source="ai", judge_id=c["judge"].pk)} == {
        captions[0],
        captions[1],
        captions[3],
    }
    # Consensus: the AI agrees with the majority on pair 0 only (pair 1: AI says A, people B).
    assert {cap for cap, _ in labels(label_source="consensus", judge_id=c["judge"].pk)} == {captions[0]}
    # Unanimous people only: pair 1.
    assert {cap for cap, _ in labels(min_human_agreement=1.0)} == {captions[1]}
    # The flagged worker breaks pair 3's three-way split when asked for.
    assert {cap for cap, _ in labels(include_flagged=True)} == {captions[0], captions[1], captions[3]}
    # Gold pairs when asked for.
    assert c["gold"].prompt.text in {cap for cap, _ in labels(include_gold=True)}
    # Paths mode holds storage names.
    _, table = run_export(**base, images="paths")
    assert all(default_storage.exists(name) for name in table.column("jpg_0").to_pylist())


def test_export_then_import_into_an_empty_database_then_export_gives_the_same_table(
    labelled_campaign, tmp_path
):
    c = labelled_campaign
    _, first = run_export(campaign_ids=[c["campaign"].pk], ties="half")
    assert first.num_rows == 3
    data = io.BytesIO()
    pq.write_table(first, data)
    Judgment.objects.all().delete()
    Pair.objects.all().delete()
    Campaign.objects.all().delete()
    Image.objects.all().delete()
    Prompt.objects.all().delete()
    AIJudgeConfig.objects.all().delete()
    Annotator.objects.all().delete()
    get_user_model().objects.all().delete()

    source = default_storage.save("imports/roundtrip.parquet", ContentFile(data.getvalue()))
    job = run_import(source, campaign_name="Round trip")
    assert job.status == Job.Status.SUCCEEDED, job.error
    _, second = run_export(campaign_ids=[job.result["campaign_id"]], ties="half")
    assert second.equals(first)


def test_an_image_that_appears_twice_in_the_shard_is_stored_once(tmp_path, aspects):
    data = png_bytes()
    ImageFactory(data=data)  # already in the database from elsewhere
    rows = [pickapic_row("a blue cube", 1, 2, 1.0, user=1), pickapic_row("a blue cube", 2, 3, 0.0, user=1)]
    job = run_import(stored_file(tmp_path, rows))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert Image.objects.count() == 4


def test_the_hf_datasets_folder_loads_with_load_from_disk(labelled_campaign, tmp_path):
    import zipfile

    import datasets

    c = labelled_campaign
    job = job_create(
        kind=DATASET_EXPORT,
        params=DatasetExportParams(campaign_ids=[c["campaign"].pk], format="hf_datasets", ties="half"),
    )
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED, fresh(job.pk).error
    name = fresh(job.pk).result["file"]
    assert name.endswith(".zip")
    with default_storage.open(name, "rb") as handle:
        zipfile.ZipFile(io.BytesIO(handle.read())).extractall(tmp_path)
    loaded = datasets.load_from_disk(str(tmp_path / "hf-dataset"))
    assert loaded.num_rows == 3
    assert isinstance(loaded.features["jpg_0"], datasets.Image)
    _, table = run_export(campaign_ids=[c["campaign"].pk], ties="half")
    assert loaded["caption"] == table.column("caption").to_pylist()
    assert loaded["label_0"] == table.column("label_0").to_pylist()
    first = loaded[0]["jpg_0"]  # decoded to a PIL image by the Image feature
    np.testing.assert_array_equal(
        np.asarray(first.convert("RGB")),
        np.asarray(PILImage.open(io.BytesIO(table.column("jpg_0")[0].as_py())).convert("RGB")),
    )


def test_the_visionprefer_jsonl_has_per_judge_scores_rankings_and_rationales(aspects):
    import json

    aspect = Aspect.objects.get(key="aesthetic")
    pair = PairFactory()
    third = ImageFactory(prompt=pair.prompt, generator=pair.image_a.generator)
    second_pair = Pair.objects.create(
        campaign=pair.campaign, prompt=pair.prompt, image_a=pair.image_b, image_b=third
    )
    judge = AIAnnotatorFactory()
    JudgmentFactory(
        pair=pair, annotator=judge, aspect=aspect, choice="B", score_a=2, score_b=5, rationale="B is sharper"
    )
    JudgmentFactory(
        pair=second_pair, annotator=judge, aspect=aspect, choice="B", score_a=4, score_b=6, rationale=""
    )
    for _ in range(2):
        JudgmentFactory(pair=pair, annotator=HumanAnnotatorFactory(), aspect=aspect, choice="A")
    job = job_create(
        kind=DATASET_EXPORT,
        params=DatasetExportParams(campaign_ids=[pair.campaign.pk], format="visionprefer_jsonl"),
    )
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED, fresh(job.pk).error
    with default_storage.open(fresh(job.pk).result["file"], "rb") as handle:
        (record,) = [json.loads(line) for line in handle.read().decode().splitlines()]
    assert record["prompt"] == pair.prompt.text
    shas = [i["sha256"] for i in record["images"]]
    assert shas == sorted(shas) and len(shas) == 3
    position = {sha: n for n, sha in enumerate(shas)}
    a, b, c = (position[i.sha256] for i in (pair.image_a, pair.image_b, third))
    ai = record["judges"][judge.name]["aesthetic"]
    # b beat a and the third image beat b: one win each for b and c (equal wins keep sha256 order), none for a.
    assert ai["ranking"] == sorted([b, c]) + [a]
    assert ai["scores"][b] == 4.5 and ai["scores"][a] == 2 and ai["scores"][c] == 6
    assert ai["rationales"] == [{"images": sorted([a, b]), "winner": b, "rationale": "B is sharper"}]
    humans = record["judges"]["human_majority"]["aesthetic"]
    assert humans["ranking"][0] == a
    assert record["images"][a]["generator"] == pair.image_a.generator.name


def imagereward_zip(records, images: dict[str, bytes], extra: dict[str, bytes] | None = None) -> str:
    import json
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data/test.json", json.dumps(records))
        for name, data in {**images, **(extra or {})}.items():
            archive.writestr(name, data)
    return default_storage.save("imports/imagereward.zip", ContentFile(buffer.getvalue()))


def imagereward_images() -> dict[str, bytes]:
    from tests.pipeline.datasets_files import jpeg

    return {f"data/part-000123/images/0007/{n}.jpg": jpeg(50 + n) for n in range(3)}


def test_an_imagereward_record_becomes_every_pair_of_its_images_with_ties(aspects):
    paths = [f"part-000123/images/0007/{n}.jpg" for n in range(3)]
    record = {"id": "000123-0007", "prompt": "a glass teapot", "generations": paths, "ranking": [2, 1, 2]}
    job = run_import(
        imagereward_zip([record], imagereward_images()), format="imagereward", dataset_name="imagereward"
    )
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["pairs"] == 3 and job.result["judgments"] == 3
    assert Judgment.objects.filter(choice="tie").count() == 1  # images 0 and 2 share rank 2
    best = Image.objects.get(params__uid="000123-0007/1")
    for judgment in Judgment.objects.exclude(choice="tie"):
        winner = judgment.pair.image_a if judgment.choice == "A" else judgment.pair.image_b
        assert winner == best
    assert Annotator.objects.get(platform="import").external_id == "imagereward:all"


@pytest.mark.parametrize(
    "records, extra, expected",
    [
        (
            [{"id": "1", "prompt": "p", "generations": ["a.jpg", "b.jpg"], "ranking": [1]}],
            {},
            "row 1, field 'ranking': has 1 ranks for 2 images",
        ),
        (
            [
                {
                    "id": "1",
                    "prompt": "p",
                    "generations": ["part-000123/images/0007/0.jpg", "missing.jpg"],
                    "ranking": [1, 2],
                }
            ],
            {},
            "row 1, field 'generations'",
        ),
        (
            [{"id": "1", "prompt": "p", "generations": ["../../etc/passwd", "b.jpg"], "ranking": [1, 2]}],
            {},
            "leaves the data set folder",
        ),
        ([], {"../evil.jpg": b"x"}, "leaves the data set folder"),
        (
            [{"id": "1", "prompt": "p", "generations": ["a.jpg", "b.jpg"]}],
            {},
            "row 1, field 'ranking': the key is missing",
        ),
    ],
    ids=["rank-length", "missing-image", "dotdot-path", "dotdot-entry", "missing-key"],
)
def test_malformed_imagereward_archives_fail_clearly_and_store_nothing(aspects, records, extra, expected):
    before = counts()
    job = run_import(imagereward_zip(records, imagereward_images(), extra), format="imagereward")
    assert job.status == Job.Status.FAILED
    assert expected in job.error
    assert counts() == before


def hpd_archive(name: str, records, images: dict[str, bytes]) -> str:
    import json
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member, data in {name: json.dumps(records).encode(), **images}.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return default_storage.save("imports/hpd.tar.gz", ContentFile(buffer.getvalue()))


def test_hpd_v2_raw_annotations_give_one_annotator_per_rater(aspects):
    from tests.pipeline.datasets_files import jpeg

    images = {f"test/0000{n}.jpg": jpeg(80 + n) for n in range(3)}
    record = {
        "prompt": "a lighthouse at dusk",
        "image_path": ["00000.jpg", "00001.jpg", "00002.jpg"],
        "rank": [2, 1, 3],
        "raw_annotation": [
            {"rank": [2, 1, 3], "user_hash": "ab12"},
            {"rank": [1, 2, 3], "user_hash": "cd34"},
        ],
    }
    job = run_import(hpd_archive("test.json", [record], images), format="hpdv2", dataset_name="hpdv2")
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["pairs"] == 3 and job.result["judgments"] == 6
    raters = sorted(Annotator.objects.filter(platform="import").values_list("external_id", flat=True))
    assert raters == ["hpdv2:ab12", "hpdv2:cd34"]
    # The raters disagree on images 0 and 1 only.
    pair = (
        Pair.objects.get(image_a__params__uid="test-1/0", image_b__params__uid="test-1/1")
        if Pair.objects.filter(image_a__params__uid="test-1/0", image_b__params__uid="test-1/1").exists()
        else Pair.objects.get(image_a__params__uid="test-1/1", image_b__params__uid="test-1/0")
    )
    assert sorted(Judgment.objects.filter(pair=pair).values_list("choice", flat=True)) == ["A", "B"]

    bad = {**record, "raw_annotations": [{"rank": [1, 2], "user_hash": "ab12"}]}
    bad.pop("raw_annotation")
    before = counts()
    job = run_import(hpd_archive("test.json", [bad], images), format="hpdv2")
    assert job.status == Job.Status.FAILED and "row 1, field 'rank': has 2 values for 3 images" in job.error
    assert counts() == before


def test_hpd_v2_train_records_are_one_pair_each(aspects):
    from tests.pipeline.datasets_files import jpeg

    images = {"train/a.jpg": jpeg(90), "train/b.jpg": jpeg(91)}
    record = {
        "prompt": "a cat",
        "file_path": ["train/a.jpg", "train/b.jpg"],
        "human_preference": [0, 1],
        "user_hash": "u1",
    }
    job = run_import(hpd_archive("train.json", [record], images), format="hpdv2", dataset_name="hpd")
    assert job.status == Job.Status.SUCCEEDED, job.error
    judgment = Judgment.objects.get()
    winner = judgment.pair.image_a if judgment.choice == "A" else judgment.pair.image_b
    assert winner.params["uid"] == "train-1/1"


def test_the_imagereward_export_has_rankings_and_images_and_imports_back(labelled_campaign):
    import json
    import zipfile

    c = labelled_campaign
    job = job_create(
        kind=DATASET_EXPORT,
        params=DatasetExportParams(campaign_ids=[c["campaign"].pk], format="imagereward"),
    )
    assert job_run(job_id=job.pk) == Job.Status.SUCCEEDED, fresh(job.pk).error
    with default_storage.open(fresh(job.pk).result["file"], "rb") as handle:
        data = handle.read()
    archive = zipfile.ZipFile(io.BytesIO(data))
    records = json.loads(archive.read("prompt_following/test.json"))
    by_prompt = {r["prompt"]: r for r in records}
    # Pair 0: majority A; pair 1: majority B; pair 2: a tie (equal ranks); pair 3: no majority, no record.
    assert set(by_prompt) == {p.prompt.text for p in c["pairs"][:3]}
    for pair, winner in ((c["pairs"][0], "A"), (c["pairs"][1], "B")):
        record = by_prompt[pair.prompt.text]
        best = record["generations"][record["ranking"].index(1)]
        image = pair.image_a if winner == "A" else pair.image_b
        assert best == f"images/{image.sha256}.png"
        assert archive.read(f"prompt_following/{best}") == winner_bytes(pair, winner)
    assert by_prompt[c["pairs"][2].prompt.text]["ranking"] == [1, 1]

    source = default_storage.save("imports/ir-roundtrip.zip", ContentFile(data))
    imported = run_import(source, format="imagereward", campaign_name="IR back", aspect="prompt_following")
    assert imported.status == Job.Status.SUCCEEDED, imported.error
    assert imported.result["pairs"] == 3 and imported.result["judgments"] == 3


def test_a_column_mapping_imports_a_csv_with_image_paths_from_its_archive(aspects):
    import zipfile

    from tests.pipeline.datasets_files import jpeg

    csv_text = "text,left,right,winner,who\na red kite,img/1.jpg,img/2.jpg,right,r1\na red kite,img/1.jpg,img/3.jpg,tie,r2\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("pairs/votes.csv", csv_text)
        for n in (1, 2, 3):
            archive.writestr(f"pairs/img/{n}.jpg", jpeg(120 + n))
    source = default_storage.save("imports/mapped.zip", ContentFile(buffer.getvalue()))
    columns = {"caption": "text", "jpg_0": "left", "jpg_1": "right", "choice": "winner", "user_id": "who"}
    job = run_import(source, format="mapped", columns=columns, dataset_name="kites")
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["pairs"] == 2
    first = Judgment.objects.get(annotator__external_id="kites:r1")
    winner = first.pair.image_a if first.choice == "A" else first.pair.image_b
    assert winner.params["uid"] == "img/2.jpg"
    assert Judgment.objects.get(annotator__external_id="kites:r2").choice == "tie"

    before = counts()
    bad = run_import(source, format="mapped", columns={**columns, "choice": "verdict"})
    assert (
        bad.status == Job.Status.FAILED
        and "field 'verdict': the column mapped to choice is missing" in bad.error
    )
    broken = csv_text.replace("img/3.jpg", "../img/9.jpg")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("votes.csv", broken)
        archive.writestr("img/1.jpg", jpeg(121))
        archive.writestr("img/2.jpg", jpeg(122))
    job = run_import(
        default_storage.save("imports/m2.zip", ContentFile(buffer.getvalue())),
        format="mapped",
        columns=columns,
    )
    assert job.status == Job.Status.FAILED and "row 2, field 'right'" in job.error
    assert counts() == before


def test_a_column_mapping_imports_a_parquet_with_image_bytes(tmp_path, aspects):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.pipeline.datasets_files import jpeg

    table = pa.table({"p": ["a dog"], "x": [jpeg(140)], "y": [jpeg(141)], "score": [0.0]})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    source = default_storage.save("imports/t.parquet", ContentFile(path.read_bytes()))
    job = run_import(
        source, format="mapped", columns={"caption": "p", "jpg_0": "x", "jpg_1": "y", "label_0": "score"}
    )
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert Judgment.objects.count() == 1
