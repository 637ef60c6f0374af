"""Encode images for a judge: downscale to a longest side and wrap as a base64 data URL.

Encoding happens once per request, before the request is sent (retries reuse the same URL). Given
unencoded sources, :func:`~pipeline.mllm.executor.iter_batch` encodes them in a small thread pool
(Pillow releases the GIL while decoding, resizing and encoding), off the caller's thread.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Literal

from PIL import Image, ImageOps

ImageFormat = Literal["JPEG", "PNG"]
ImageSource = str | PathLike[str] | bytes | Image.Image

_MIME = {"JPEG": "image/jpeg", "PNG": "image/png"}


@dataclass(frozen=True, slots=True)
class ImageEncoding:
    """How images are sent to a judge: longest side, file format, JPEG quality."""

    max_side: int = 768
    image_format: ImageFormat = "JPEG"
    quality: int = 85

    def encode(self, source: ImageSource) -> EncodedImage:
        """Encode one image with these settings."""
        return encode_image(
            source, max_side=self.max_side, image_format=self.image_format, quality=self.quality
        )


@dataclass(frozen=True, slots=True)
class EncodedImage:
    """An image ready to send: its data URL plus what it ended up as (size, type, bytes)."""

    data_url: str
    mime: str
    width: int
    height: int
    nbytes: int

    def to_bytes(self) -> bytes:
        """The encoded file (JPEG or PNG bytes) behind the data URL."""
        return base64.b64decode(self.data_url.split(",", 1)[1])

    def to_pil(self) -> Image.Image:
        """Decode to an RGB PIL image (for local models)."""
        with Image.open(io.BytesIO(self.to_bytes())) as img:
            return img.convert("RGB")


def encode_image(
    source: ImageSource,
    *,
    max_side: int = 768,
    image_format: ImageFormat = "JPEG",
    quality: int = 85,
) -> EncodedImage:
    """Encode a path, file bytes or PIL image as a data URL, longest side at most ``max_side``.

    Aspect ratio is kept and EXIF rotation applied. A file that already fits and is already in the
    target format is passed through byte for byte (no re-encoding).
    """
    if max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}")
    if isinstance(source, Image.Image):
        return _encode_pil(source.copy(), max_side, image_format, quality)
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        orientation = img.getexif().get(0x0112, 1)
        fits = max(img.size) <= max_side
        same_format = img.format == image_format and (image_format == "PNG" or img.mode in ("RGB", "L"))
        if fits and same_format and orientation == 1:
            return _wrap(data, image_format, img.width, img.height)
        return _encode_pil(img, max_side, image_format, quality)


def _encode_pil(img: Image.Image, max_side: int, image_format: ImageFormat, quality: int) -> EncodedImage:
    if img.format == "JPEG" and max(img.size) > max_side:
        # Let the JPEG decoder downscale in the DCT domain (1/2, 1/4, 1/8), never below max_side: far
        # cheaper than decoding every pixel, and as good as a box filter.
        img.draft("RGB" if img.mode not in ("L", "RGB") else img.mode, (max_side, max_side))
    # reducing_gap=1.0: reduce() by the whole factor (area averaging, cheap and anti-aliased), then one
    # bicubic step for the rest. A judge sees the result at this size, so finer filtering buys nothing.
    img.thumbnail((max_side, max_side), Image.Resampling.BICUBIC, reducing_gap=1.0)
    img = ImageOps.exif_transpose(img)
    if image_format == "JPEG" and img.mode not in ("RGB", "L"):
        img = _flatten(img)
    buffer = io.BytesIO()
    if image_format == "JPEG":
        img.save(buffer, "JPEG", quality=quality)
    else:
        img.save(buffer, "PNG", compress_level=1)  # level 1: far faster, barely larger for photos
    return _wrap(buffer.getvalue(), image_format, img.width, img.height)


def _flatten(img: Image.Image) -> Image.Image:
    # JPEG has no alpha: composite on white, which is how a viewer shows a transparent PNG.
    rgba = img.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _wrap(data: bytes, image_format: ImageFormat, width: int, height: int) -> EncodedImage:
    mime = _MIME[image_format]
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return EncodedImage(data_url=url, mime=mime, width=width, height=height, nbytes=len(data))
