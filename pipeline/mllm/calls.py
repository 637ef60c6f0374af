"""What goes into a judge call and what comes out: :class:`CallRequest` and :class:`CallResult`.

Both are plain frozen dataclasses so the Django side can build requests from rows and store results
without this package knowing about either.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pipeline.mllm.group import PairwiseJudgment, answer_to_pairwise
from pipeline.mllm.images import EncodedImage, ImageEncoding, ImageSource
from pipeline.mllm.schema import AnswerSpec, ParsedAnswer
from pipeline.mllm.templates import (
    DEFAULT_ASPECTS,
    Aspect,
    Mode,
    ScoreScale,
    get_template,
    labels_for,
    messages_as_text,
    render_messages,
)

CallStatus = Literal["ok", "parse_error", "api_error", "cancelled"]


@dataclass(frozen=True, slots=True)
class RequestImage:
    """One image of a call: the caller's id for it, and either its encoded form or where to get it.

    ``source`` (a path, file bytes, a PIL image, or a no-argument callable returning one of those — for
    instance reading from object storage) is encoded by the executor's thread pool, once, before the
    call is sent. Both may be None for judges that never look at pixels (the simulated judge).
    """

    image_id: str
    encoded: EncodedImage | None = None
    source: ImageSource | Callable[[], ImageSource] | None = None


@dataclass(frozen=True, slots=True)
class CallRequest:
    """One judge call: a text-to-image prompt and its images in presentation order.

    ``key`` is the caller's identifier (for instance the AICall id) and comes back on the result.
    Presentation order is the order of ``images``: to measure position bias, send a second request with
    the images swapped. ``image_encoding`` applies to images given by ``source``. ``metadata`` is
    free-form; the simulated judge reads ``metadata["image_meta"]``.
    """

    key: str
    prompt: str
    images: tuple[RequestImage, ...]
    template_version: str = "vp-pair-v1"
    aspects: tuple[Aspect, ...] = DEFAULT_ASPECTS
    scale: ScoreScale = ScoreScale()
    image_encoding: ImageEncoding = ImageEncoding()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        labels_for(len(self.images), get_template(self.template_version).mode)  # raises if inconsistent
        keys = [a.key for a in self.aspects]
        if not keys or len(set(keys)) != len(keys):
            raise ValueError(f"aspects must be a non-empty list of distinct keys, got {keys}")

    @property
    def mode(self) -> Mode:
        """``pair`` or ``group``, fixed by the template."""
        return get_template(self.template_version).mode

    @property
    def image_ids(self) -> tuple[str, ...]:
        """Image ids in presentation order."""
        return tuple(image.image_id for image in self.images)

    @property
    def needs_encoding(self) -> bool:
        """True if some image has a source but no encoded form yet."""
        return any(image.encoded is None and image.source is not None for image in self.images)

    def with_encoded_images(self) -> CallRequest:
        """A copy with every image that has a source encoded (blocking; the executor runs it in a pool)."""
        images = []
        for image in self.images:
            if image.encoded is None and image.source is not None:
                source = image.source() if callable(image.source) else image.source
                image = RequestImage(image.image_id, self.image_encoding.encode(source))
            images.append(image)
        return replace(self, images=tuple(images))

    def answer_spec(self) -> AnswerSpec:
        """What a valid answer to this request must contain."""
        mode = self.mode
        return AnswerSpec(
            mode=mode,
            labels=labels_for(len(self.images), mode),
            aspect_keys=tuple(a.key for a in self.aspects),
            scale=self.scale,
        )

    def messages(self, *, structured: bool = True) -> list[dict[str, Any]]:
        """Chat Completions messages; ``structured=False`` spells the JSON Schema out in the prompt."""
        urls = []
        for image in self.images:
            if image.encoded is None:
                raise ValueError(f"image {image.image_id!r} of request {self.key!r} is not encoded yet")
            urls.append(image.encoded.data_url)
        return self._render(urls, structured)

    def prompt_text(self, *, structured: bool = True) -> str:
        """The exact prompt as text for admins, with images shown as ``<image: id>`` placeholders."""
        messages = self._render(["about:blank"] * len(self.images), structured)
        return messages_as_text(
            messages,
            [
                f"{label} = {image.image_id}"
                for label, image in zip(self.answer_spec().labels, self.images, strict=True)
            ],
        )

    def _render(self, urls: list[str], structured: bool) -> list[dict[str, Any]]:
        return render_messages(
            self.template_version,
            prompt=self.prompt,
            image_urls=urls,
            aspects=self.aspects,
            scale=self.scale,
            json_schema_in_prompt=None if structured else self.answer_spec().json_schema(),
        )


@dataclass(frozen=True, slots=True)
class CallError:
    """Why a call produced no usable answer.

    ``reason`` is a :class:`~pipeline.mllm.parsing.ParseFailureReason` value for bad answers, or one of
    ``rate_limited``, ``server_error``, ``timeout``, ``connection``, ``bad_request``, ``auth``,
    ``http_error``, ``invalid_response`` (a 200 whose body is not a chat completion), ``error_response``
    (a 200 carrying an error object), ``cancelled``, ``internal_error`` for everything before an answer.
    """

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One try of a call: what happened, how long it took, the tokens it used, the wait before it.

    ``raw_text`` is what the server sent back (the answer text, or the body of an error or of a reply
    that was not a chat completion), ``message`` why the attempt failed. ``usage_known`` is False when the
    request was sent but no reply with its usage reached the client (a timeout with no late reply, a
    dropped connection): the provider may have billed it, and nobody on this side can know how much.
    ``late_reply_s`` is set when the reply came after the client stopped waiting (its tokens still count).
    """

    outcome: str  # "ok" or a CallError reason
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    http_status: int | None = None
    finish_reason: str | None = None
    waited_before_s: float = 0.0
    structured: bool = True
    raw_text: str | None = None
    message: str | None = None
    usage_known: bool = True
    repairs: tuple[str, ...] = ()
    late_reply_s: float | None = None


@dataclass(frozen=True, slots=True)
class CallResult:
    """The outcome of one request after all its attempts.

    Tokens are summed over attempts (failed answers are billed too). ``latency_s`` is the final
    attempt's round trip; ``elapsed_s`` is the whole call including retries and backoff waits.
    ``raw_text`` is the last answer text the judge returned (None if none came back). ``structured``
    says whether the final attempt asked for a JSON-schema response format; pass it to
    ``request.prompt_text(structured=...)`` to show the exact prompt of the call.
    """

    request: CallRequest
    status: CallStatus
    answer: ParsedAnswer | None
    error: CallError | None
    raw_text: str | None
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    elapsed_s: float
    attempts: int
    model: str
    provider: str
    structured: bool = True
    attempt_log: tuple[AttemptRecord, ...] = ()

    @property
    def key(self) -> str:
        """The request's key."""
        return self.request.key

    @property
    def ok(self) -> bool:
        """True when the call produced a parsed answer."""
        return self.status == "ok"

    @property
    def template_version(self) -> str:
        """The prompt template version of the request (store it with every judgment)."""
        return self.request.template_version

    def pairwise(self) -> list[PairwiseJudgment]:
        """Pairwise judgments (image ids, canonical i<j order) per aspect; empty if the call failed."""
        if self.answer is None:
            return []
        return answer_to_pairwise(self.answer, self.request.image_ids)


def estimate_tokens(request: CallRequest, *, max_output_tokens: int = 1024) -> int:
    """Rough token count of a call (prompt + images + answer budget), for rate limits and cost estimates.

    Text is counted at ~4 characters per token; an image as OpenAI's high-detail tiling counts it
    (85 + 170 per 512-px tile), which is within a factor of two for most VLM servers.
    """
    # Template wording measured on vp-*-v1: ~1300 characters plus ~850 per aspect (~1250 with the schema
    # spelled out); the larger figure keeps the estimate on the safe side.
    text = len(request.prompt) + 1300 + 1250 * len(request.aspects)
    image_tokens = 0
    for image in request.images:
        if image.encoded is not None:
            tiles = math.ceil(image.encoded.width / 512) * math.ceil(image.encoded.height / 512)
            image_tokens += 85 + 170 * tiles
    return text // 4 + image_tokens + max_output_tokens
