"""The job kinds pipeline plugs into the job core: their typed parameters, handlers and queues.

Registered from PipelineConfig.ready(). Handlers are dotted paths, imported only when a job runs, so the
web process never loads diffusers or an MLLM client to show a page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.registry import JobKind, JobParams, job_kind_register

GENERATE = "generate"
POLISH = "polish"
ANNOTATE = "annotate"
DATASET_IMPORT = "dataset_import"
DATASET_EXPORT = "dataset_export"


@dataclass(frozen=True)
class GenerationParams(JobParams):
    """Render `images_per_prompt` images per prompt of a campaign with each generator, then build pairs."""

    campaign_id: int
    generator_ids: list[int]
    images_per_prompt: int = 4
    batch_size: int = 4
    seed: int = 0
    pair_strategy: str = "all"
    pairs_per_prompt: int | None = None
    fidelity_gold_pairs: int = 0


@dataclass(frozen=True)
class PolishParams(JobParams):
    """Rewrite a campaign's (or the given) prompts with a text LLM: an AI configuration and/or explicit
    endpoint fields (explicit fields win)."""

    campaign_id: int | None = None
    prompt_ids: list[int] = field(default_factory=list)
    ai_config_id: int | None = None
    base_url: str = ""
    model: str = ""
    api_key_env: str = ""
    replace_in_campaign: bool = False


@dataclass(frozen=True)
class AnnotationParams(JobParams):
    """Label a campaign's pairs with one AI judge: which pairs, and online or through the Batch API."""

    campaign_id: int
    judge_config_id: int
    selection: str = "all"
    sample_n: int | None = None
    seed: int = 0
    execution: str = "online"


@dataclass(frozen=True)
class DatasetImportParams(JobParams):
    """Import a data set file saved in storage (`source_name`) into a campaign (given, or created by name)."""

    source_name: str
    format: str = "pickapic"
    campaign_id: int | None = None
    campaign_name: str = ""
    dataset_name: str = ""
    aspect: str = "overall"
    columns: dict[str, str] = field(default_factory=dict)  # format "mapped": our name -> the file's column


@dataclass(frozen=True)
class DatasetExportParams(JobParams):
    """Export labelled pairs of campaigns as a training file (see pipeline.services.datasets)."""

    campaign_ids: list[int]
    format: str = "dpo_parquet"
    aspect_keys: list[str] = field(default_factory=list)
    label_source: str = "human_majority"
    judge_id: int | None = None
    min_human_agreement: float = 0.0
    include_flagged: bool = False
    include_gold: bool = False
    ties: str = "drop"
    images: str = "bytes"
    filename: str = ""


def register_job_kinds() -> None:
    """Tell the job core about generation, polishing and AI annotation."""
    job_kind_register(
        JobKind(
            name=GENERATE,
            label="Generate images",
            handler="pipeline.services.generation.generation_job",
            params=GenerationParams,
            queue="gpu",
        )
    )
    job_kind_register(
        JobKind(
            name=POLISH,
            label="Polish prompts",
            handler="pipeline.services.polish.polish_job",
            params=PolishParams,
            queue="ai",
        )
    )
    job_kind_register(
        JobKind(
            name=ANNOTATE,
            label="AI annotation",
            handler="pipeline.services.annotation.annotation_job",
            params=AnnotationParams,
            queue="ai",
        )
    )
    job_kind_register(
        JobKind(
            name=DATASET_IMPORT,
            label="Import a data set",
            handler="pipeline.services.datasets.dataset_import_job",
            params=DatasetImportParams,
            queue="default",
        )
    )
    job_kind_register(
        JobKind(
            name=DATASET_EXPORT,
            label="Export a data set",
            handler="pipeline.services.datasets.dataset_export_job",
            params=DatasetExportParams,
            queue="default",
        )
    )
