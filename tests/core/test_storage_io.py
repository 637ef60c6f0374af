"""core.storage_io on both backends: the local signed storage and the S3 API of the loopback server."""

from __future__ import annotations

import io
import urllib.request
from pathlib import Path

import pytest
from django.core.files.storage import storages
from django.urls import resolve

from core.storage_io import (
    COMPLETE_MARKER,
    IncompleteFolder,
    fetch_folder,
    folder_complete,
    signed_url,
    store_folder,
    store_stream,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["local", "s3"])
def storage(request, settings):
    """The app's default storage: local signed files (served by /media/) or the loopback S3 bucket."""
    if request.param == "s3":
        return request.getfixturevalue("s3_storage")
    settings.MEDIA_ROOT = resolve("/media/x.png").kwargs["document_root"]
    return storages["default"]


class CountingReader(io.RawIOBase):
    """A file-like of `size` bytes that records the largest single read asked of it."""

    def __init__(self, size: int) -> None:
        self.left, self.largest_read = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        self.largest_read = max(self.largest_read, n)
        buffer[:n] = bytes(i % 251 for i in range(n))
        self.left -= n
        return n


def checkpoint(folder: Path) -> Path:
    (folder / "heads").mkdir(parents=True)
    (folder / "config.json").write_text('{"aspects": ["overall"]}')
    (folder / "heads" / "overall.bin").write_bytes(bytes(range(256)) * 400)
    return folder


def test_a_stream_is_stored_in_chunks_under_its_exact_name(storage):
    size = 12 * 1024 * 1024  # over boto3's 8 MiB multipart threshold
    reader = CountingReader(size)
    name = store_stream("exports/big.bin", io.BufferedReader(reader, buffer_size=1024 * 1024))
    assert name == "exports/big.bin"
    assert storage.size(name) == size
    assert reader.largest_read <= 8 * 1024 * 1024  # never the whole file at once
    # Storing again replaces the file under the same name (no "big_x7Yz.bin" copy).
    assert store_stream(name, io.BytesIO(b"second")) == name
    with storage.open(name, "rb") as handle:
        assert handle.read() == b"second"


def test_a_folder_reads_back_complete_and_the_marker_is_written_last(storage, tmp_path, monkeypatch):
    source = checkpoint(tmp_path / "ckpt")
    order: list[str] = []
    save = storage.save

    def spy(name, content, max_length=None):
        order.append(name)
        return save(name, content, max_length=max_length)

    monkeypatch.setattr(storage, "save", spy)
    names = store_folder(source, "checkpoints/rm-1")
    monkeypatch.undo()
    assert names == ["checkpoints/rm-1/config.json", "checkpoints/rm-1/heads/overall.bin"]
    assert order[-1] == f"checkpoints/rm-1/{COMPLETE_MARKER}"
    assert folder_complete("checkpoints/rm-1")
    back = fetch_folder("checkpoints/rm-1", tmp_path / "back")
    for relative in ("config.json", "heads/overall.bin"):
        assert (back / relative).read_bytes() == (source / relative).read_bytes()


def test_a_folder_whose_writer_stopped_halfway_is_not_complete(storage, tmp_path, monkeypatch):
    source = checkpoint(tmp_path / "ckpt")
    store_folder(source, "checkpoints/rm-2")  # an earlier complete version
    (source / "heads" / "overall.bin").write_bytes(b"new weights")
    save = storage.save

    def failing(name, content, max_length=None):
        if name.endswith("overall.bin"):
            raise ConnectionError("the store went away")
        return save(name, content, max_length=max_length)

    monkeypatch.setattr(storage, "save", failing)
    with pytest.raises(ConnectionError):
        store_folder(source, "checkpoints/rm-2")
    monkeypatch.undo()
    assert not folder_complete("checkpoints/rm-2")
    with pytest.raises(IncompleteFolder, match="no COMPLETE marker"):
        fetch_folder("checkpoints/rm-2", tmp_path / "never")
    assert not (tmp_path / "never").exists()
    store_folder(source, "checkpoints/rm-2")  # written again once the store is back
    assert (fetch_folder("checkpoints/rm-2") / "heads" / "overall.bin").read_bytes() == b"new weights"


def test_a_signed_download_link_serves_the_bytes_as_an_attachment(storage, live_server, client):
    store_stream("exports/judgments.jsonl", io.BytesIO(b'{"a": 1}\n'))
    url = signed_url("exports/judgments.jsonl", download_as="campaign-judgments.jsonl")
    if url.startswith("/"):  # local storage: core.media serves it to a signed-in user
        from tests.factories import AdminFactory

        client.force_login(AdminFactory())
        response = client.get(url)
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == b'{"a": 1}\n'
        return
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b'{"a": 1}\n'
        assert response.headers["Content-Disposition"] == 'attachment; filename="campaign-judgments.jsonl"'
