"""The job kinds scoring plugs into the job core (registered from ScoringConfig.ready())."""

from __future__ import annotations

from dataclasses import dataclass

from core.registry import JobKind, JobParams, job_kind_register
from scoring.report_params import ReportParameters

REPORT = "report"


@dataclass(frozen=True)
class ReportJobParams(JobParams):
    """Compute one agreement report; `key` (the parameters' hash) finds a running job for the same report."""

    report: ReportParameters
    key: str


def register_job_kinds() -> None:
    """Tell the job core about the agreement report."""
    job_kind_register(
        JobKind(
            name=REPORT,
            label="Agreement report",
            handler="scoring.services.reports.report_job",
            params=ReportJobParams,
        )
    )
