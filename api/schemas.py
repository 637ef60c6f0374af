"""Request and response bodies of the API (pydantic, via ninja): what the OpenAPI document describes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Field
from ninja import Schema as NinjaSchema
from pydantic import field_validator


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class Schema(NinjaSchema):
    """Every body of the API: text holding a NUL byte is refused (PostgreSQL text cannot store one)."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("NUL bytes are not allowed")
        return value


Choice = Literal["A", "B", "tie"]
Side = Literal["left", "right", "tie"]


class ErrorItem(Schema):
    loc: list[str]
    msg: str


class Error(Schema):
    detail: str
    errors: list[ErrorItem]


class CampaignSettings(Schema):
    """Campaign settings an API caller may set (the page's form fields)."""

    guidelines: str | None = Field(None, max_length=20000)
    aspects: list[str] | None = Field(None, min_length=1, max_length=50)
    humans_per_pair: int | None = Field(None, ge=1, le=50)
    gold_rate: float | None = Field(None, ge=0, le=1)
    allow_tie: bool | None = None
    rationale_required: bool | None = None
    human_scores: bool | None = None
    score_min: int | None = Field(None, ge=-100, le=100)
    score_max: int | None = Field(None, ge=-100, le=100)
    reservation_minutes: int | None = Field(None, ge=1, le=1440)
    min_seconds_per_pair: float | None = Field(None, ge=0, le=3600)
    worker_quota: int | None = Field(None, ge=1, le=10_000_000)
    access: Literal["open", "invite"] | None = None
    completion_code: str | None = Field(None, max_length=64)


class CampaignCreate(CampaignSettings):
    name: str = Field(..., min_length=1, max_length=200)


class CampaignStatusIn(Schema):
    status: Literal["draft", "active", "paused", "closed"]


class CampaignOut(Schema):
    id: int
    slug: str
    name: str
    status: str
    guidelines: str
    aspects: list[str]
    humans_per_pair: int
    gold_rate: float
    allow_tie: bool
    rationale_required: bool
    human_scores: bool
    score_min: int
    score_max: int
    reservation_minutes: int
    min_seconds_per_pair: float
    worker_quota: int | None
    access: str
    created_at: datetime


class ProgressOut(Schema):
    total: int
    complete: int
    untouched: int
    in_progress: int
    complete_pct: float
    in_progress_pct: float
    per_hour: int
    active_workers: int
    updated_at: datetime


class PromptIn(Schema):
    prompt: str = Field(..., min_length=1, max_length=10000)
    source_id: str | None = Field(None, max_length=128)
    tags: list[str] | None = Field(None, max_length=50)


class PromptsBulkIn(Schema):
    prompts: list[PromptIn] = Field(..., min_length=1, max_length=1000)
    unsafe: Literal["off", "flag", "skip"] = "flag"


class PromptsBulkOut(Schema):
    rows: int
    created: int
    existing: int
    duplicates_in_request: int
    flagged_unsafe: int
    skipped_unsafe: int
    prompt_ids: list[int]


class PromptOut(Schema):
    id: int
    text: str
    source: str
    source_id: str
    is_unsafe: bool
    tags: list[Any]


class ImageOut(Schema):
    id: int
    prompt_id: int | None
    generator: str
    sha256: str
    format: str
    width: int
    height: int
    seed: int | None
    url: str
    created: bool = False


class PairBuildIn(Schema):
    strategy: Literal["all", "cross_generator", "sample"] = "all"
    sample_per_prompt: int | None = Field(None, ge=1, le=10000)
    seed: int = Field(0, ge=0, le=2**31 - 1)


class PairBuildOut(Schema):
    created: int
    total: int


class PairOut(Schema):
    id: int
    prompt_id: int
    image_a: int
    image_b: int
    is_gold: bool
    slots_taken: int
    slots_submitted: int


class JudgmentOut(Schema):
    id: int
    campaign: str
    pair: int
    annotator: str
    annotator_kind: str
    aspect: str
    choice: str
    score_a: float | None
    score_b: float | None
    rationale: str
    trial: int
    presented_order: str
    duration_s: float | None
    created_at: datetime


class PairDetailOut(PairOut):
    prompt: str
    judgments: list[JudgmentOut]


class JudgmentPage(Schema):
    items: list[JudgmentOut]
    next_since_id: int = Field(
        ..., description="Pass as since_id to get the next page; equal to the request's when empty."
    )
    has_more: bool


class JudgmentIn(Schema):
    """One judgment made elsewhere, in the JSONL import format (docs/judgments-jsonl.md)."""

    campaign: str = Field(..., max_length=200)
    pair: int | None = Field(None, ge=1, le=2**63 - 1)
    image_a: str | None = Field(None, max_length=64)
    image_b: str | None = Field(None, max_length=64)
    prompt: str | None = Field(None, max_length=10000)
    annotator: str = Field(..., min_length=1, max_length=200)
    annotator_kind: Literal["human", "ai"]
    aspect: str = Field(..., max_length=64)
    choice: Choice
    score_a: float | None = None
    score_b: float | None = None
    rationale: str = Field("", max_length=10000)
    trial: int = Field(1, ge=1, le=100)
    presented_order: Literal["AB", "BA"] = "AB"
    duration_s: float | None = Field(None, ge=0)


class JudgmentsBulkIn(Schema):
    judgments: list[JudgmentIn] = Field(..., min_length=1, max_length=1000)
    dry_run: bool = False


class JudgmentsBulkOut(Schema):
    lines: int
    created: int
    unchanged: int
    annotators_created: int


class JobKindOut(Schema):
    name: str
    label: str
    queue: str
    params_schema: dict[str, Any]


class JobLaunchIn(Schema):
    kind: str = Field(..., max_length=16)
    params: dict[str, Any] = Field(default_factory=dict)
    campaign: str | None = Field(None, max_length=200)
    title: str = Field("", max_length=300)


class JobOut(Schema):
    id: int
    kind: str
    status: str
    title: str
    campaign: str | None
    params: dict[str, Any]
    progress_done: int
    progress_total: int
    cost_usd: float
    cancel_requested: bool
    result: dict[str, Any]
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class EstimateOut(Schema):
    pairs: int
    calls: int
    judgments: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    simulated: bool
    warning: str


class ReportPending(Schema):
    status: str
    job_id: int


class LabelAspect(Schema):
    key: str
    name: str
    question: str
    guideline: str


class LabelImage(Schema):
    id: int
    url: str
    width: int
    height: int


class LabelTask(Schema):
    assignment_id: int
    pair_id: int
    prompt: str
    left: LabelImage
    right: LabelImage
    left_is: Literal["A", "B"]
    expires_at: datetime
    aspects: list[LabelAspect]
    allow_tie: bool
    rationale_required: bool
    scores: list[int] | None = Field(None, description="[min, max] of the per-image score, when asked for.")


class LabelNext(Schema):
    done: bool
    task: LabelTask | None


class LabelSubmitIn(Schema):
    choices: dict[str, Side] = Field(..., description="aspect key -> left, right or tie (as shown)")
    rationales: dict[str, str] = Field(default_factory=dict)
    scores: dict[str, tuple[int, int]] = Field(
        default_factory=dict, description="aspect key -> [left, right]"
    )


class LabelSubmitOut(Schema):
    assignment_id: int
    duplicate: bool
    pair_complete: bool


class LabelSkipIn(Schema):
    reason: Literal["image_broken", "prompt_unclear", "offensive"]
