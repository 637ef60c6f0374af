"""Builders shared by the MLLM tests."""

from __future__ import annotations

import io

from PIL import Image

from pipeline.mllm import CallRequest, EncodedImage, RequestImage
from pipeline.mllm.loopback_server import LoopbackServer
from pipeline.mllm.providers import OpenAICompatibleJudge, OpenAIJudgeConfig, RetryPolicy

API_KEY_ENV = "VP_TEST_JUDGE_KEY"
API_KEY = "sk-test-SECRET-do-not-log-0123456789"

#: Tiny waits so retry tests take milliseconds; one parse attempt so a bad answer shows as a failure.
FAST_RETRY = RetryPolicy(max_attempts=4, max_parse_attempts=1, backoff_base_s=0.01, backoff_max_s=0.05)


def make_judge(
    server: LoopbackServer | str, retry: RetryPolicy = FAST_RETRY, **config: object
) -> OpenAICompatibleJudge:
    """An OpenAI-compatible judge pointed at a loopback server or its base URL (needs the api_key fixture)."""
    options: dict[str, object] = {
        "model": "loopback-judge",
        "base_url": server if isinstance(server, str) else server.base_url,
        "api_key_env": API_KEY_ENV,
        "api_key_env_allowed": (API_KEY_ENV,),
    }
    options.update(config)
    return OpenAICompatibleJudge(OpenAIJudgeConfig(**options), retry, seed=0)  # type: ignore[arg-type]


def make_request(key: str, image: EncodedImage | None, *, k: int = 2, **kwargs: object) -> CallRequest:
    """A request with ``k`` copies of ``image``: pair mode for k == 2, group mode otherwise."""
    template = kwargs.pop("template_version", "vp-pair-v1" if k == 2 else "vp-group-v1")
    images = tuple(RequestImage(f"{key}-img{i}", image) for i in range(k))
    return CallRequest(
        key=key,
        prompt="two red cubes on a table",
        images=images,
        template_version=str(template),
        **kwargs,  # type: ignore[arg-type]
    )


def image_bytes(
    size: tuple[int, int],
    image_format: str = "PNG",
    mode: str = "RGB",
    colour: tuple[int, ...] = (10, 120, 200),
) -> bytes:
    """An image file in memory."""
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, image_format)
    return buffer.getvalue()
