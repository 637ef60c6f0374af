"""Who labels: crowdworkers are members of the crowdworkers group (admin checks live in core.permissions)."""

from __future__ import annotations

CROWDWORKERS_GROUP = "crowdworkers"
