"""MLLM judges for VisionPrefer-style annotation, with no Django in sight.

Build :class:`CallRequest` objects (prompt + encoded images + aspects), pick a judge from
:mod:`pipeline.mllm.providers`, and run them with :func:`iter_batch`; each :class:`CallResult` carries the
parsed answer (or the reason it failed), tokens, latency and attempts. Heavy dependencies (openai,
torch, transformers) load only when their judge is used.

May import: the standard library, numpy, Pillow, pydantic, openai, torch and transformers. Never Django,
Celery or any module of the web app (an import-linter contract checks it, indirect imports included).
"""

from pipeline.mllm.calls import (
    AttemptRecord,
    CallError,
    CallRequest,
    CallResult,
    RequestImage,
    estimate_tokens,
)
from pipeline.mllm.executor import TokenBucket, iter_batch, iter_batch_ready
from pipeline.mllm.group import PairwiseJudgment, answer_to_pairwise, ranking_to_pairwise
from pipeline.mllm.images import EncodedImage, ImageEncoding, encode_image
from pipeline.mllm.parsing import AnswerParseError, ParseFailureReason, parse_answer
from pipeline.mllm.schema import AnswerSpec, AspectJudgment, ParsedAnswer
from pipeline.mllm.templates import (
    DEFAULT_ASPECTS,
    DEFAULT_TEMPLATE_VERSION,
    TEMPLATES,
    Aspect,
    PromptTemplate,
    ScoreScale,
    get_template,
    render_messages,
)

__all__ = [
    "DEFAULT_ASPECTS",
    "DEFAULT_TEMPLATE_VERSION",
    "TEMPLATES",
    "AnswerParseError",
    "AnswerSpec",
    "Aspect",
    "AspectJudgment",
    "AttemptRecord",
    "CallError",
    "CallRequest",
    "CallResult",
    "EncodedImage",
    "ImageEncoding",
    "PairwiseJudgment",
    "ParseFailureReason",
    "ParsedAnswer",
    "PromptTemplate",
    "RequestImage",
    "ScoreScale",
    "TokenBucket",
    "answer_to_pairwise",
    "encode_image",
    "estimate_tokens",
    "get_template",
    "iter_batch",
    "iter_batch_ready",
    "parse_answer",
    "ranking_to_pairwise",
    "render_messages",
]
