"""Image ingestion: the one path by which any image file enters storage.

Accepts PNG, JPEG and WebP only, verified by decoding with Pillow. Rejects empty, oversize, truncated,
mislabeled and decompression-bomb files with a clear message; stores identical bytes once.

Bytes after the image's end (a PNG followed by an HTML page or a zip archive: a polyglot file) are
rejected rather than cut off or re-encoded: the stored bytes are exactly what was uploaded and hashed, so
a clear error is better than a silently different file. The end is found by walking the format's own
structure (PNG chunks up to IEND, JPEG segments and entropy-coded scans up to EOI, the RIFF size of WebP).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from PIL import Image as PILImage

from annotate.models import Generator, Image, Prompt

ALLOWED_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
EXTENSION_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}


class ImageRejected(ValueError):
    """The file is not an image we can store; the message says why in plain words."""


@dataclass(frozen=True)
class CheckedImage:
    """What validation learned about an image file."""

    data: bytes
    sha256: str
    format: str
    width: int
    height: int


def _sniff_format(data: bytes) -> str | None:
    # Magic numbers, so the error can name what the file really is.
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def _png_end(data: bytes) -> int | None:
    offset = 8
    while offset + 12 <= len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        offset += 12 + length  # length, type, data, CRC
        if kind == b"IEND":
            return offset if offset <= len(data) else None
    return None


def _jpeg_end(data: bytes) -> int | None:
    offset, size = 2, len(data)  # after SOI
    while offset + 1 < size:
        if data[offset] != 0xFF:
            return None
        while offset + 1 < size and data[offset + 1] == 0xFF:  # fill bytes before a marker
            offset += 1
        if offset + 1 >= size:
            return None
        marker = data[offset + 1]
        if marker == 0xD9:  # EOI
            return offset + 2
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            offset += 2
            continue
        if offset + 4 > size:
            return None
        offset += 2 + int.from_bytes(data[offset + 2 : offset + 4], "big")
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker
            while True:
                offset = data.find(b"\xff", offset)
                if offset < 0 or offset + 1 >= size:
                    return None
                following = data[offset + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    offset += 1 if following == 0xFF else 2  # stuffed byte, restart marker, fill
                    continue
                break
    return None


def _webp_end(data: bytes) -> int | None:
    if len(data) < 12:
        return None
    size = int.from_bytes(data[4:8], "little")
    return 8 + size + (size & 1)


def _image_end(data: bytes, image_format: str) -> int | None:
    """Offset just past the image's last byte by its format's structure; None if no end is found."""
    if image_format == "PNG":
        return _png_end(data)
    if image_format == "JPEG":
        return _jpeg_end(data)
    return _webp_end(data)


def image_check(*, data: bytes, filename: str = "") -> CheckedImage:
    """Validate image bytes without storing them; raise ImageRejected with a clear reason."""
    label = f"{filename!r}" if filename else "the file"
    if not data:
        raise ImageRejected(f"{label} is empty (0 bytes).")
    if len(data) > settings.IMAGE_MAX_BYTES:
        raise ImageRejected(
            f"{label} is {len(data):,} bytes; the limit is {settings.IMAGE_MAX_BYTES:,} bytes."
        )
    sniffed = _sniff_format(data)
    if sniffed is None:
        raise ImageRejected(f"{label} is not an image: accepted formats are PNG, JPEG and WebP.")
    if sniffed not in ALLOWED_FORMATS:
        raise ImageRejected(f"{label} is a {sniffed} image; accepted formats are PNG, JPEG and WebP.")
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext and ext in EXTENSION_FORMATS and EXTENSION_FORMATS[ext] != sniffed:
        raise ImageRejected(f"{label} is named .{ext} but its content is {sniffed}; rename or re-export it.")
    if ext and ext not in EXTENSION_FORMATS:
        raise ImageRejected(f"{label} has extension .{ext}; accepted are .png, .jpg, .jpeg and .webp.")

    max_pixels = settings.IMAGE_MAX_PIXELS
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its own limit; we enforce ours below.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data), formats=[sniffed]) as probe:
                width, height = probe.size
                if width * height > max_pixels:
                    raise ImageRejected(
                        f"{label} is {width}x{height} = {width * height:,} pixels; the limit is "
                        f"{max_pixels:,} (a decompression bomb or an oversize image)."
                    )
                probe.verify()
            # verify() does not decode pixel data; a full load finds truncated files.
            with PILImage.open(io.BytesIO(data), formats=[sniffed]) as full:
                full.load()
    except ImageRejected:
        raise
    except PILImage.DecompressionBombError as exc:
        raise ImageRejected(f"{label} is a decompression bomb: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"{label} is a damaged or truncated {sniffed} file: {exc}") from exc
    if width < 1 or height < 1:
        raise ImageRejected(f"{label} has no pixels.")
    end = _image_end(data, sniffed)
    if end is None or end > len(data):
        raise ImageRejected(f"{label} is a damaged {sniffed} file: its end marker is missing.")
    if end < len(data):
        raise ImageRejected(
            f"{label} has {len(data) - end:,} bytes after the end of the {sniffed} image (another file "
            "appended to it, such as HTML or a zip archive); export the image again without them."
        )
    return CheckedImage(
        data=data, sha256=hashlib.sha256(data).hexdigest(), format=sniffed, width=width, height=height
    )


def _store(checked: CheckedImage) -> str:
    """Save the checked bytes under their content-derived name; returns the storage name."""
    name = f"images/{checked.sha256[:2]}/{checked.sha256}.{ALLOWED_FORMATS[checked.format]}"
    # The name is derived from the content, so a file left behind by a crashed or racing ingest is
    # exactly the file we would write: reuse it instead of storing a renamed copy.
    if not default_storage.exists(name):
        return default_storage.save(name, ContentFile(checked.data))
    return name


@dataclass(frozen=True)
class ImageToIngest:
    """One already checked image (see image_check) for images_ingest_many, with its rows' links."""

    checked: CheckedImage
    generator_id: int
    prompt_id: int | None = None
    params: dict[str, Any] | None = None


def images_ingest_many(items: list[ImageToIngest]) -> dict[str, int]:
    """Store many checked images at once (bulk imports); returns sha256 -> image id for all of them.

    The same rules as image_ingest: bytes go through image_check first (the caller did that, so a whole
    file can be refused before anything is stored), identical bytes are stored once, the file name comes
    from the content. Existing rows are reused as they are (their prompt and generator are not changed).
    """
    by_sha = {item.checked.sha256: item for item in items}
    ids = dict(Image.objects.filter(sha256__in=list(by_sha)).values_list("sha256", "id"))
    new = []
    for sha, item in by_sha.items():
        if sha in ids:
            continue
        checked = item.checked
        new.append(
            Image(
                prompt_id=item.prompt_id,
                generator_id=item.generator_id,
                file=_store(checked),
                sha256=sha,
                format=checked.format,
                width=checked.width,
                height=checked.height,
                size_bytes=len(checked.data),
                params=item.params or {},
            )
        )
    if new:
        Image.objects.bulk_create(new, ignore_conflicts=True, batch_size=1000)
        ids.update(Image.objects.filter(sha256__in=[i.sha256 for i in new]).values_list("sha256", "id"))
    return ids


def image_ingest(
    *,
    data: bytes,
    generator: Generator,
    prompt: Prompt | None = None,
    filename: str = "",
    seed: int | None = None,
    params: dict[str, Any] | None = None,
) -> tuple[Image, bool]:
    """Validate and store an image; return (image, created). Identical bytes return the existing row."""
    checked = image_check(data=data, filename=filename)
    existing = Image.objects.filter(sha256=checked.sha256).first()
    if existing is not None:
        return existing, False
    stored = _store(checked)
    try:
        with transaction.atomic():
            image = Image.objects.create(
                prompt=prompt,
                generator=generator,
                file=stored,
                sha256=checked.sha256,
                format=checked.format,
                width=checked.width,
                height=checked.height,
                size_bytes=len(checked.data),
                seed=seed,
                params=params or {},
            )
    except IntegrityError:
        # Another process stored the same bytes between our lookup and insert.
        return Image.objects.get(sha256=checked.sha256), False
    return image, True
