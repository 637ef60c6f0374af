"""The Django-free data set kit: schema checks, the DPO writer, and archive safety (no database)."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.datasets import DatasetError
from pipeline.datasets.archives import ArchiveLimits, ArchiveReader, safe_folder_path, safe_member_name
from pipeline.datasets.pickapic import DpoWriter, dpo_schema, pickapic_count, pickapic_read
from tests.pipeline.datasets_files import PICKAPIC_SCHEMA, pickapic_row, sample_rows, write_parquet


def test_the_reader_streams_labelled_rows_and_resumes_from_a_row(tmp_path):
    path = write_parquet(tmp_path / "s.parquet", sample_rows())
    assert pickapic_count(path) == 6
    batches = list(pickapic_read(path, batch_rows=4))
    assert [b.end for b in batches] == [4, 6]
    rows = [r for b in batches for r in b.rows]
    assert [r.row for r in rows] == [1, 2, 3, 4, 5]  # row 6 has has_label = false
    assert [r.choice for r in rows] == ["0", "1", "0", "tie", "1"]
    assert rows[0].user_id == "7" and rows[0].uid_0 == "uid-1"
    resumed = [r.row for b in pickapic_read(path, batch_rows=4, start_row=2) for r in b.rows]
    assert resumed == [3, 4, 5]


def test_only_the_required_columns_are_needed(tmp_path):
    schema = pa.schema(
        [f for f in PICKAPIC_SCHEMA if f.name in ("caption", "jpg_0", "jpg_1", "label_0", "label_1")]
    )
    rows = [{k: v for k, v in pickapic_row("x", 1, 2, 0.0, user=1).items() if k in schema.names}]
    path = write_parquet(tmp_path / "min.parquet", rows, schema=schema)
    (row,) = next(iter(pickapic_read(path))).rows
    assert row.model_0 == "" and row.user_id == "" and row.choice == "1"


def test_a_truncated_parquet_file_is_a_dataset_error(tmp_path):
    path = write_parquet(tmp_path / "s.parquet", sample_rows())
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(DatasetError, match="truncated or damaged"):
        list(pickapic_read(path))


def test_the_dpo_writer_streams_batches_with_a_fixed_schema(tmp_path):
    path = tmp_path / "out.parquet"
    row = {"caption": "c", "jpg_0": b"a", "jpg_1": b"b", "label_0": 1.0, "label_1": 0.0,
           "model_0": "m", "model_1": "n", "aspect": "overall", "label_source": "human_majority"}  # fmt: skip
    with DpoWriter(path, batch_rows=3) as writer:
        for _ in range(7):
            writer.write(row)
    handle = pq.ParquetFile(path)
    assert handle.metadata.num_rows == 7 and handle.schema_arrow == dpo_schema()
    assert dpo_schema(paths=True).field("jpg_0").type == pa.string()


@pytest.mark.parametrize("name", ["../evil.png", "a/../../evil.png", "/etc/passwd", "C:/x.png", "..\\x.png"])
def test_member_names_that_leave_the_folder_are_refused(name):
    with pytest.raises(DatasetError):
        safe_member_name(name)


def test_folder_paths_do_not_follow_symlinks_out(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "ok.png").write_bytes(b"x")
    os.symlink("/etc", root / "link")
    assert safe_folder_path(root, "ok.png") == (root / "ok.png").resolve()
    with pytest.raises(DatasetError, match="symbolic link"):
        safe_folder_path(root, "link/passwd")


def zip_with(tmp_path, entries: dict[str, bytes], name="a.zip", compression=zipfile.ZIP_DEFLATED):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for member, data in entries.items():
            archive.writestr(member, data)
    return path


def test_a_zip_with_dotdot_entries_is_refused_before_anything_is_read(tmp_path):
    path = zip_with(tmp_path, {"images/ok.png": b"x", "../../escape.png": b"y"})
    with pytest.raises(DatasetError, match="leaves the data set folder"):
        ArchiveReader(path)


def test_zip_bombs_are_refused_by_ratio_size_and_count(tmp_path):
    with pytest.raises(DatasetError, match="compression bomb"):
        ArchiveReader(zip_with(tmp_path, {"zeros.bin": b"\0" * 5_000_000}))
    with pytest.raises(DatasetError, match="the limit is"):
        ArchiveReader(
            zip_with(tmp_path, {"big.bin": os.urandom(4096)}, name="b.zip"),
            limits=ArchiveLimits(max_entry_bytes=1000),
        )
    many = zip_with(tmp_path, {f"{i}.png": b"x" for i in range(20)}, name="c.zip")
    with pytest.raises(DatasetError, match="more than 10 entries"):
        ArchiveReader(many, limits=ArchiveLimits(max_entries=10))
    with pytest.raises(DatasetError, match="expands to more than"):
        ArchiveReader(many, limits=ArchiveLimits(max_total_bytes=10))


def test_tar_links_are_refused_and_members_are_read_by_name(tmp_path):
    good = tmp_path / "good.tar.gz"
    with tarfile.open(good, "w:gz") as archive:
        info = tarfile.TarInfo("HPD/test/00001.jpg")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
    with ArchiveReader(good) as reader:
        assert reader.names() == ["HPD/test/00001.jpg"]
        assert reader.read("HPD/test/00001.jpg") == b"abc"
        with pytest.raises(DatasetError, match="is not in"):
            reader.read("HPD/test/00002.jpg")
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as archive:
        link = tarfile.TarInfo("HPD/test/x.jpg")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    with pytest.raises(DatasetError, match="is a link"):
        ArchiveReader(bad)
    not_archive = tmp_path / "x.zip"
    not_archive.write_bytes(b"hello")
    with pytest.raises(DatasetError, match="neither a zip nor a tar"):
        ArchiveReader(not_archive)
