"""What an agreement report covers: its parameters, whose hash is the cache key (with the campaign).

A module of its own (no Django) so the job-kind registry can name the type without importing the report
code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

# The human-majority rules of scoring.stats (``MajorityRule``), named here without importing the kit, so
# the job registry that loads this module does not load numpy and scipy; a test keeps the two equal.
MajorityRuleName = Literal["strict", "tie"]
MAJORITY_RULE_NAMES: tuple[str, ...] = get_args(MajorityRuleName)
DEFAULT_MAJORITY_RULE: MajorityRuleName = "strict"


@dataclass(frozen=True)
class ReportParameters:
    """What a report covers; its hash is the cache key (with the campaign)."""

    campaign_ids: tuple[int, ...]
    aspect_keys: tuple[str, ...] | None = None
    include_flagged: bool = False
    include_blocked: bool = False
    ai_judge_ids: tuple[int, ...] | None = None
    exclude_simulated: bool = False  # leave out the demo's simulated crowdworkers
    n_resamples: int = 1000
    seed: int = 0
    level: float = 0.95
    # How a pair whose humans split without a single most-voted choice enters majority-based figures:
    # "strict" leaves it out (counted in the report), "tie" reads it as a tie majority.
    majority_rule: MajorityRuleName = DEFAULT_MAJORITY_RULE

    def __post_init__(self) -> None:
        if self.majority_rule not in MAJORITY_RULE_NAMES:
            raise ValueError(
                f"majority_rule must be one of {', '.join(MAJORITY_RULE_NAMES)}; got {self.majority_rule!r}"
            )

    def as_dict(self) -> dict[str, Any]:
        """Canonical, JSON-ready form (sorted id lists) stored in job params and in the report."""
        data = asdict(self)
        data["campaign_ids"] = [
            self.campaign_ids[0],
            *sorted(set(self.campaign_ids[1:]) - {self.campaign_ids[0]}),
        ]
        for key in ("aspect_keys", "ai_judge_ids"):
            data[key] = None if data[key] is None else sorted(set(data[key]))
        if not self.exclude_simulated:
            del data["exclude_simulated"]  # absent when off, so reports cached before the flag keep their key
        return data

    @property
    def key(self) -> str:
        """sha256 of the canonical parameters: the cache key."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportParameters:
        """Inverse of as_dict (job params, JSON)."""

        def ids(value: Any) -> tuple[Any, ...] | None:
            return None if value is None else tuple(value)

        return cls(
            campaign_ids=tuple(int(c) for c in data["campaign_ids"]),
            aspect_keys=ids(data.get("aspect_keys")),
            include_flagged=bool(data.get("include_flagged", False)),
            include_blocked=bool(data.get("include_blocked", False)),
            ai_judge_ids=None
            if data.get("ai_judge_ids") is None
            else tuple(int(i) for i in data["ai_judge_ids"]),
            exclude_simulated=bool(data.get("exclude_simulated", False)),
            n_resamples=int(data.get("n_resamples", 1000)),
            seed=int(data.get("seed", 0)),
            level=float(data.get("level", 0.95)),
            majority_rule=data.get("majority_rule", DEFAULT_MAJORITY_RULE),
        )
