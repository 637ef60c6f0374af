"""The job kinds scoring plugs into the job core (registered from ScoringConfig.ready())."""

from __future__ import annotations

from dataclasses import dataclass

from core.registry import JobKind, JobParams, job_kind_register
from scoring.report_params import ReportParameters

REPORT = "report"
TRAIN = "train"
SCORE = "score"


@dataclass(frozen=True)
class ReportJobParams(JobParams):
    """Compute one agreement report; `key` (the parameters' hash) finds a running job for the same report."""

    report: ReportParameters
    key: str


@dataclass(frozen=True)
class TrainJobParams(JobParams):
    """Train one reward model (its row holds the data choice and hyperparameters), then score its campaigns."""

    reward_model_id: int


@dataclass(frozen=True)
class ScoreJobParams(JobParams):
    """Score every image of the campaigns with a trained reward model and write its pair judgments."""

    reward_model_id: int
    campaign_ids: list[int]


def register_job_kinds() -> None:
    """Tell the job core about the agreement report and the VP-Score training and scoring jobs."""
    job_kind_register(
        JobKind(
            name=REPORT,
            label="Agreement report",
            handler="scoring.services.reports.report_job",
            params=ReportJobParams,
        )
    )
    job_kind_register(
        JobKind(
            name=TRAIN,
            label="Train a reward model",
            handler="scoring.services.vpscore.train_job",
            params=TrainJobParams,
            queue="gpu",
        )
    )
    job_kind_register(
        JobKind(
            name=SCORE,
            label="Score with a reward model",
            handler="scoring.services.vpscore.score_job",
            params=ScoreJobParams,
            queue="gpu",
        )
    )
