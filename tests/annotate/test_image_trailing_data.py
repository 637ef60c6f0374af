"""Images with bytes after their end (polyglot files) are rejected; every clean variant is accepted."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image as PILImage

from annotate.services.images import ImageRejected, image_check


def encoded(fmt: str, size=(40, 30), **options) -> bytes:
    buffer = io.BytesIO()
    image = PILImage.effect_noise(size, 60).convert("RGB")  # noise: real entropy-coded data, 0xFF bytes too
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _exif() -> PILImage.Exif:
    exif = PILImage.Exif()
    exif[0x010F] = "Camera maker"  # an APP1 segment before the frame
    return exif


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return buffer.getvalue()


CLEAN = {
    "png": lambda: encoded("PNG"),
    "png-optimized": lambda: encoded("PNG", optimize=True),
    "jpeg": lambda: encoded("JPEG", quality=90),
    "jpeg-progressive": lambda: encoded("JPEG", progressive=True),
    "jpeg-restart-markers": lambda: encoded("JPEG", restart_marker_blocks=1),
    "jpeg-exif": lambda: encoded("JPEG", exif=_exif()),
    "webp-lossy": lambda: encoded("WEBP", quality=80),
    "webp-lossless": lambda: encoded("WEBP", lossless=True),
}
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


@pytest.mark.parametrize("kind", sorted(CLEAN))
def test_clean_images_are_accepted(kind):
    data = CLEAN[kind]()
    checked = image_check(data=data, filename=f"x.{EXTENSIONS[kind.split('-')[0]]}")
    assert checked.data == data


@pytest.mark.parametrize("kind", ["png", "jpeg", "jpeg-progressive", "webp-lossy", "webp-lossless"])
@pytest.mark.parametrize(
    "tail", [b"<html><script>alert(document.cookie)</script></html>", zip_bytes(), b"\x00", b"\xff\xd9"]
)
def test_bytes_after_the_image_end_are_rejected(kind, tail):
    data = CLEAN[kind]()
    with pytest.raises(ImageRejected, match=f"{len(tail):,} bytes after the end"):
        image_check(data=data + tail, filename=f"x.{EXTENSIONS[kind.split('-')[0]]}")


def test_a_png_without_its_end_chunk_is_refused():
    data = encoded("PNG")
    with pytest.raises(ImageRejected):
        image_check(data=data[:-12], filename="x.png")
