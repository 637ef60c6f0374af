"""Image encoding: data URLs, longest side capped with aspect kept, JPEG or PNG, fast paths."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from pipeline.mllm import encode_image
from pipeline.mllm.tests.helpers import image_bytes


def decode(url: str) -> Image.Image:
    header, payload = url.split(",", 1)
    assert header.endswith(";base64")
    return Image.open(io.BytesIO(base64.b64decode(payload)))


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_downscales_to_longest_side_keeping_aspect(image_format):
    encoded = encode_image(image_bytes((800, 400)), max_side=200, image_format=image_format)
    assert (encoded.width, encoded.height) == (200, 100)
    assert encoded.mime == f"image/{image_format.lower()}"
    assert encoded.data_url.startswith(f"data:image/{image_format.lower()};base64,")
    img = decode(encoded.data_url)
    assert img.format == image_format and img.size == (200, 100)
    assert encoded.nbytes == len(encoded.to_bytes())


def test_accepts_path_bytes_and_pil(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(image_bytes((300, 600)))
    from_path = encode_image(path, max_side=100)
    from_str = encode_image(str(path), max_side=100)
    from_pil = encode_image(Image.open(path), max_side=100)
    assert {(e.width, e.height) for e in (from_path, from_str, from_pil)} == {(50, 100)}


def test_small_jpeg_is_passed_through_unchanged():
    original = image_bytes((64, 48), "JPEG")
    encoded = encode_image(original, max_side=100)
    assert encoded.to_bytes() == original


def test_large_jpeg_is_downscaled_via_draft():
    original = image_bytes((2048, 1024), "JPEG", colour=(120, 40, 200))
    encoded = encode_image(original, max_side=256)
    assert (encoded.width, encoded.height) == (256, 128)
    r, g, b = decode(encoded.data_url).convert("RGB").getpixel((100, 60))
    assert abs(r - 120) < 8 and abs(g - 40) < 8 and abs(b - 200) < 8


def test_transparent_png_becomes_jpeg_on_white():
    encoded = encode_image(image_bytes((40, 40), mode="RGBA", colour=(0, 0, 0, 0)), max_side=40)
    assert decode(encoded.data_url).convert("RGB").getpixel((5, 5)) == (255, 255, 255)


def test_png_target_keeps_alpha():
    encoded = encode_image(image_bytes((40, 40), mode="RGBA", colour=(0, 0, 0, 0)), image_format="PNG")
    assert decode(encoded.data_url).mode == "RGBA"


def test_exif_rotation_is_applied():
    img = Image.new("RGB", (60, 30), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", exif=exif)
    encoded = encode_image(buffer.getvalue(), max_side=100)
    assert (encoded.width, encoded.height) == (30, 60)


def test_to_pil_roundtrip():
    encoded = encode_image(image_bytes((20, 10)), max_side=20)
    assert encoded.to_pil().size == (20, 10)


def test_bad_input_raises():
    with pytest.raises(ValueError):
        encode_image(image_bytes((10, 10)), max_side=0)
    with pytest.raises(OSError):
        encode_image(b"not an image")
