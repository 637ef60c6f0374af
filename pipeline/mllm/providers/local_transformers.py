"""Judge running a local vision-language model with transformers (Qwen2-VL, LLaVA, Idefics, …).

The model is loaded once per (path, device, dtype) and cached for the life of the process; generation
runs in a worker thread so the batch's event loop stays responsive, one generation at a time (a model
on one device gains nothing from overlapping generate() calls, and they would fight over memory).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

from pipeline.mllm.calls import AttemptRecord, CallRequest, CallResult, estimate_tokens
from pipeline.mllm.parsing import AnswerParseError, parse_answer
from pipeline.mllm.providers.base import CallTracker


@dataclass(frozen=True, slots=True)
class LocalModelConfig:
    """Where the model is and how to run it. ``model`` is a local path or a hub id.

    Greedy decoding by default (``do_sample=False``): the same prompt then gives the same answer, so a
    failed parse is not retried unless ``max_parse_attempts`` > 1 and sampling is on.
    """

    model: str
    device: str = "cpu"
    dtype: str = "float32"
    max_new_tokens: int = 512
    do_sample: bool = False
    temperature: float = 1.0
    max_parse_attempts: int = 1
    trust_remote_code: bool = False


@dataclass(slots=True)
class _Loaded:
    processor: Any
    model: Any
    lock: threading.Lock


_CACHE: dict[tuple[str, str, str], _Loaded] = {}
_CACHE_LOCK = threading.Lock()


def load_model(config: LocalModelConfig) -> tuple[Any, Any]:
    """Load (processor, model) through ``from_pretrained``, once per (model, device, dtype)."""
    return _load(config).processor, _load(config).model


def _load(config: LocalModelConfig) -> _Loaded:
    key = (config.model, config.device, config.dtype)
    with _CACHE_LOCK:
        if key not in _CACHE:
            # Heavy imports only here: the rest of pipeline.mllm must import fast and without torch.
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor

            processor = AutoProcessor.from_pretrained(
                config.model, trust_remote_code=config.trust_remote_code
            )
            model = AutoModelForImageTextToText.from_pretrained(
                config.model, dtype=getattr(torch, config.dtype), trust_remote_code=config.trust_remote_code
            )
            model = model.to(config.device).eval()  # type: ignore[arg-type]  # transformers' stubs
            _CACHE[key] = _Loaded(processor=processor, model=model, lock=threading.Lock())
        return _CACHE[key]


class LocalTransformersJudge:
    """Judge with a local ``AutoModelForImageTextToText`` + ``AutoProcessor``; zero network, real tokens."""

    provider = "transformers"
    needs_pixels = True

    def __init__(self, config: LocalModelConfig) -> None:
        self.config = config
        self.model = config.model

    def estimate_tokens(self, request: CallRequest) -> int:
        """Rough tokens of one call (only used if a rate limit is set)."""
        return estimate_tokens(request, max_output_tokens=self.config.max_new_tokens)

    async def aclose(self) -> None:
        """The model stays cached for the process; nothing is bound to the loop."""

    async def judge(self, request: CallRequest) -> CallResult:
        """Generate an answer in a worker thread and parse it; never raises for a bad answer."""
        return await asyncio.to_thread(self.judge_sync, request)

    def judge_sync(self, request: CallRequest) -> CallResult:
        """Blocking version of :meth:`judge`, for callers without an event loop."""
        loaded = _load(self.config)
        tracker = CallTracker(request=request, model=self.model, provider=self.provider)
        spec = request.answer_spec()
        for attempt in range(1, self.config.max_parse_attempts + 1):
            started = time.perf_counter()
            text, prompt_tokens, completion_tokens, finish_reason = self._generate(loaded, request)
            tracker.record(
                AttemptRecord(
                    "ok",
                    time.perf_counter() - started,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    finish_reason=finish_reason,
                    structured=False,
                ),
                raw_text=text,
            )
            try:
                answer = parse_answer(text, spec, finish_reason=finish_reason)
            except AnswerParseError as exc:
                if attempt == self.config.max_parse_attempts:
                    return tracker.parse_failure(exc)
                continue
            return tracker.finish("ok", answer=answer)
        raise AssertionError("unreachable: max_parse_attempts must be >= 1")

    def _generate(self, loaded: _Loaded, request: CallRequest) -> tuple[str, int, int, str]:
        import torch

        messages, images = hf_messages(request)
        processor, model = loaded.processor, loaded.model
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[text], images=images, return_tensors="pt").to(model.device)
        eos = getattr(processor, "tokenizer", processor).eos_token_id
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.config.max_new_tokens,
            "do_sample": self.config.do_sample,
        }
        if self.config.do_sample:
            kwargs["temperature"] = self.config.temperature
        with loaded.lock, torch.inference_mode():
            output = model.generate(**inputs, **kwargs)
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = output[0, prompt_len:]
        ended = eos is not None and len(new_tokens) > 0 and int(new_tokens[-1]) == eos
        finish_reason = "stop" if ended or len(new_tokens) < self.config.max_new_tokens else "length"
        answer = processor.decode(new_tokens, skip_special_tokens=True)
        return answer, int(prompt_len), int(len(new_tokens)), finish_reason


def hf_messages(request: CallRequest) -> tuple[list[dict[str, Any]], list[Any]]:
    """Our OpenAI-style messages in the transformers chat format, plus the PIL images in order."""
    # Always spell the schema out: local generation has no response_format enforcement.
    messages = request.messages(structured=False)
    images = [image.encoded.to_pil() for image in request.images if image.encoded is not None]
    converted = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        else:
            parts = [{"type": "image"} if p["type"] == "image_url" else p for p in content]
        converted.append({"role": message["role"], "content": parts})
    return converted, images
