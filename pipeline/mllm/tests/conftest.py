"""Fixtures for the MLLM package: a loopback Chat Completions server, an API key, a small image."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PIL import Image

from pipeline.mllm import EncodedImage, encode_image
from pipeline.mllm.loopback_server import LoopbackServer
from pipeline.mllm.tests.helpers import API_KEY, API_KEY_ENV


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A fresh loopback server without latency."""
    with LoopbackServer() as s:
        yield s


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The judge's key, in the environment variable the judge config names."""
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    return API_KEY


@pytest.fixture(scope="session")
def small_image() -> EncodedImage:
    """A 32x24 JPEG data URL."""
    return encode_image(Image.new("RGB", (32, 24), (200, 30, 30)), max_side=32)
