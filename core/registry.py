"""The job-kind registry: what kinds of job exist, their typed parameters, handlers and queues.

Apps fill it from their ``AppConfig.ready()`` (see :mod:`core.jobs` for running jobs). It imports no model,
so the Job model can read a kind's label from it without an import circle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, Self

import pydantic

#: The three queues and the thin task that consumes each (routing lives in settings).
QUEUE_TASKS = {
    "default": "core.tasks.run_job",
    "ai": "core.tasks.run_ai_job",
    "gpu": "core.tasks.run_gpu_job",
}


# --- typed parameters ---------------------------------------------------------------------------------


class JobParamsError(ValueError):
    """A job's parameters do not match its kind's parameters dataclass (the message names the fields)."""


@cache
def _cached_adapter(cls: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(cls)


def _adapter(cls: type) -> pydantic.TypeAdapter[Any]:
    # JobParams dataclasses are frozen, hence hashable; mypy cannot see that through ClassVar config.
    return _cached_adapter(cls)


class JobParams:
    """Base of a job kind's parameters: subclass it as a frozen dataclass with typed fields.

    Stored on Job.params as JSON (``to_json``) and read back, validated, with ``from_json``; unknown keys
    and values of the wrong type are refused with a message naming the field.
    """

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = pydantic.ConfigDict(extra="forbid")

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready form stored on the Job row."""
        return _adapter(type(self)).dump_python(self, mode="json")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Validate stored or submitted parameters; raises JobParamsError naming each bad field."""
        try:
            return _adapter(cls).validate_python(dict(data))
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'params'}: {error['msg']}"
                for error in exc.errors()
            )
            raise JobParamsError(f"{cls.__name__}: {problems}") from exc


# --- the registry -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobKind:
    """A kind of job: its name (stored on the row), label, handler (dotted path), queue and parameters."""

    name: str
    label: str
    handler: str
    params: type[JobParams]
    queue: str = "default"

    def __post_init__(self) -> None:
        if self.queue not in QUEUE_TASKS:
            raise ValueError(
                f"job kind {self.name!r}: unknown queue {self.queue!r}; queues: {', '.join(QUEUE_TASKS)}"
            )
        if not (dataclasses.is_dataclass(self.params) and issubclass(self.params, JobParams)):
            raise TypeError(f"job kind {self.name!r}: params must be a JobParams dataclass")


_KINDS: dict[str, JobKind] = {}


def job_kind_register(kind: JobKind) -> None:
    """Add a job kind (from an AppConfig.ready()); registering the same kind again is a no-op."""
    existing = _KINDS.get(kind.name)
    if existing is not None and existing != kind:
        raise ValueError(f"job kind {kind.name!r} is already registered differently: {existing}")
    _KINDS[kind.name] = kind


def job_kind(name: str) -> JobKind:
    """The registered kind called `name`; ValueError naming the known kinds otherwise."""
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"Unknown job kind {name!r}; known kinds: {', '.join(sorted(_KINDS))}") from None


def job_kinds() -> Mapping[str, JobKind]:
    """Every registered kind, by name."""
    return dict(_KINDS)


def job_kind_label(name: str) -> str:
    """A kind's label for the pages; the raw name when no installed app registers it."""
    kind = _KINDS.get(name)
    return kind.label if kind else name
