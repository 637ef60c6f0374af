"""Request and upload limits: oversize bodies refused before they are read, prompt files bounded in bytes
and rows, parquet refused from its metadata and read in batches."""

from __future__ import annotations

import io
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.test.client import ClientHandler
from django.urls import reverse

from annotate.models import Prompt
from pipeline.services import prompt_import
from pipeline.services.prompt_import import PromptImportError, prompts_import
from tests.factories import AdminFactory, UserFactory

pytestmark = pytest.mark.django_db


class UnreadableBody(io.RawIOBase):
    """A request body that records whether anything tried to read it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.read_bytes += len(buffer)
        buffer[: len(buffer)] = b"x" * len(buffer)
        return len(buffer)


def wsgi_post(path: str, length: int, body: UnreadableBody, cookies: str = "") -> tuple[int, bytes]:
    """POST through the whole middleware stack with a declared length and a body that counts reads."""
    environ = RequestFactory().post(path).environ
    environ.update(
        {
            "CONTENT_LENGTH": str(length),
            "CONTENT_TYPE": "multipart/form-data; boundary=xyz",
            "wsgi.input": body,
            "HTTP_COOKIE": cookies,
        }
    )
    response = ClientHandler()(environ)
    return response.status_code, response.content


def test_an_anonymous_300_mb_multipart_body_is_refused_unread():
    body = UnreadableBody()
    status, content = wsgi_post(reverse("annotate:login"), 300 * 1024 * 1024, body)
    assert status == 413 and b"limit is" in content
    assert body.read_bytes == 0


def test_signed_in_caps_depend_on_the_account(client, settings):
    worker = UserFactory()
    client.force_login(worker)
    cookies = f"sessionid={client.cookies['sessionid'].value}"
    body = UnreadableBody()
    status, _ = wsgi_post(reverse("annotate:home"), settings.REQUEST_MAX_BODY_SIGNED_IN + 1, body, cookies)
    assert status == 413 and body.read_bytes == 0
    admin_client = client.__class__()
    admin_client.force_login(AdminFactory())
    data = b"a prompt\n" * (200 * 1024 // 9)  # 200 KB: over the anonymous and worker caps, fine for staff
    page = admin_client.post(
        reverse("pipeline:prompt-import"), {"file": SimpleUploadedFile("p.txt", data), "unsafe": "off"}
    )
    assert page.status_code == 302


def test_an_oversize_prompt_file_is_refused_with_its_size(client, settings):
    settings.PROMPT_IMPORT_MAX_BYTES = 1000
    client.force_login(AdminFactory())
    page = client.post(
        reverse("pipeline:prompt-import"),
        {"file": SimpleUploadedFile("p.txt", b"a red cat\n" * 150), "unsafe": "off"},
    )
    assert page.status_code == 200 and "the limit is 1,000 bytes" in page.content.decode()
    with pytest.raises(PromptImportError, match="1,500 bytes; the limit is 1,000"):
        prompts_import(data=b"a red cat\n" * 150, filename="p.txt")
    assert not Prompt.objects.exists()


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("p.txt", b"".join(b"prompt %d\n" % i for i in range(11))),
        ("p.csv", b"prompt\n" + b"".join(b"prompt %d\n" % i for i in range(11))),
        ("p.jsonl", b"".join(b'{"prompt": "prompt %d"}\n' % i for i in range(11))),
    ],
)
def test_text_files_over_the_row_limit_are_refused(settings, filename, data):
    settings.PROMPT_IMPORT_MAX_ROWS = 10
    with pytest.raises(PromptImportError, match="more than 10 rows"):
        prompts_import(data=data, filename=filename)
    assert not Prompt.objects.exists()


def repeated_prompt_parquet(rows: int) -> bytes:
    """A tiny file that expands to `rows` rows: one prompt repeated (dictionary and run-length encoded)."""
    table = pa.table({"prompt": pa.repeat("a red cat", rows).dictionary_encode(), "seed": pa.repeat(1, rows)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=rows)
    return buffer.getvalue()


def test_a_small_parquet_expanding_to_many_rows_is_refused_fast(settings):
    settings.PROMPT_IMPORT_MAX_ROWS = 1000
    data = repeated_prompt_parquet(300_000)
    assert len(data) < 20_000
    started = time.perf_counter()
    with pytest.raises(PromptImportError, match="300,000 rows; the limit is 1,000"):
        prompts_import(data=data, filename="metadata.parquet")
    assert time.perf_counter() - started < 3.0  # generous: reading the 300,000 rows takes far longer
    assert not Prompt.objects.exists()


def test_parquet_is_read_in_batches(monkeypatch):
    monkeypatch.setattr(prompt_import, "PARQUET_BATCH_ROWS", 7)
    table = pa.table(
        {"prompt": [f"prompt {i}" for i in range(20)], "image_name": [f"{i}.png" for i in range(20)]}
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=6)
    batches = []
    real = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        for batch in real(self, *args, **kwargs):
            batches.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    result = prompts_import(data=buffer.getvalue(), filename="metadata.parquet")
    assert result.created == 20 and max(batches) <= 7 and sum(batches) == 20
    assert Prompt.objects.get(text="prompt 19").source_id == "19.png"
