"""Template helpers for the report page."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def get_item(mapping: dict[Any, Any], key: Any) -> Any:
    """``mapping[key]``, or the key itself when it is missing (a name lookup in templates)."""
    return mapping.get(key, key)
