"""Every stored image goes through one ingestion service that rejects bad files clearly."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image as PILImage

from annotate.models import Image
from annotate.services.images import ImageRejected, image_ingest
from tests.factories import GeneratorFactory, png_bytes

pytestmark = pytest.mark.django_db


def encode(fmt: str, size: tuple[int, int] = (32, 24), colour=(10, 200, 30)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas: a decompression bomb without the memory."""
    data = bytearray(png_bytes((1, 1)))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"this is not an image at all\n", "notes.png", "not an image"),
        (b"", "empty.png", r"empty \(0 bytes\)"),
        (png_bytes((64, 64))[:-40], "cut.png", "damaged or truncated"),
        (encode("GIF"), "anim.gif", "GIF image; accepted formats are PNG, JPEG and WebP"),
        (encode("BMP"), "old.bmp", "BMP image"),
        (encode("JPEG"), "photo.png", "named .png but its content is JPEG"),
        (png_with_declared_size(30_000, 30_000), "bomb.png", "decompression bomb"),
    ],
    ids=["text-named-png", "zero-bytes", "truncated", "gif", "bmp", "mislabeled", "bomb"],
)
def test_bad_files_are_rejected_with_a_clear_error_and_nothing_is_stored(settings, data, filename, message):
    generator = GeneratorFactory()
    with pytest.raises(ImageRejected, match=message):
        image_ingest(data=data, generator=generator, filename=filename)
    assert Image.objects.count() == 0
    assert stored_files(settings) == []


def test_oversize_file_is_rejected(settings):
    settings.IMAGE_MAX_BYTES = 1000
    with pytest.raises(ImageRejected, match="the limit is 1,000 bytes"):
        image_ingest(
            data=encode("PNG", (200, 200)) + b"\0" * 1000, generator=GeneratorFactory(), filename="a.png"
        )
    assert Image.objects.count() == 0


def test_pixel_limit_is_configurable(settings):
    settings.IMAGE_MAX_PIXELS = 100
    with pytest.raises(ImageRejected, match="pixels; the limit is 100"):
        image_ingest(data=encode("PNG", (20, 20)), generator=GeneratorFactory(), filename="a.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_supported_formats_are_stored_with_their_metadata(settings, fmt):
    data = encode(fmt, (40, 30))
    image, created = image_ingest(
        data=data, generator=GeneratorFactory(), filename=f"x.{fmt.lower()}", seed=5
    )
    assert created
    assert (image.format, image.width, image.height, image.size_bytes, image.seed) == (
        fmt,
        40,
        30,
        len(data),
        5,
    )
    with image.file.open("rb") as handle:
        assert handle.read() == data
    assert len(stored_files(settings)) == 1


def test_identical_bytes_are_stored_once(settings):
    generator = GeneratorFactory()
    data = encode("PNG")
    first, created_first = image_ingest(data=data, generator=generator, filename="a.png")
    second, created_second = image_ingest(data=data, generator=generator, filename="b.png")
    assert (created_first, created_second) == (True, False)
    assert first.pk == second.pk
    assert Image.objects.count() == 1
    assert len(stored_files(settings)) == 1
