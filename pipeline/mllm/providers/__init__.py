"""Judges (providers): OpenAI-compatible endpoints, local transformers models, and a simulated judge.

The OpenAI and transformers judges are imported lazily (``from pipeline.mllm.providers import
OpenAICompatibleJudge`` works, but only that line pays for importing ``openai``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pipeline.mllm.providers.base import CallTracker, Judge
from pipeline.mllm.providers.retry import RetryPolicy, parse_retry_after
from pipeline.mllm.providers.simulated import SimulatedJudge

if TYPE_CHECKING:
    from pipeline.mllm.providers.local_transformers import LocalModelConfig, LocalTransformersJudge
    from pipeline.mllm.providers.openai_compatible import OpenAICompatibleJudge, OpenAIJudgeConfig

_LAZY = {
    "OpenAICompatibleJudge": "pipeline.mllm.providers.openai_compatible",
    "OpenAIJudgeConfig": "pipeline.mllm.providers.openai_compatible",
    "LocalTransformersJudge": "pipeline.mllm.providers.local_transformers",
    "LocalModelConfig": "pipeline.mllm.providers.local_transformers",
}

__all__ = [
    "CallTracker",
    "Judge",
    "LocalModelConfig",
    "LocalTransformersJudge",
    "OpenAICompatibleJudge",
    "OpenAIJudgeConfig",
    "RetryPolicy",
    "SimulatedJudge",
    "parse_retry_after",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
