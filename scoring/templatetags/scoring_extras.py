"""Template helpers for the report page."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def get_item(mapping: dict[Any, Any], key: Any) -> Any:
    """``mapping[key]``, or the key itself when it is missing (a name lookup in templates)."""
    return mapping.get(key, key)


_VERDICT_CLASSES = {"within": "within", "below": "below", "above": "above"}


@register.filter
def verdict_class(verdict: str | None) -> str:
    """The CSS class of a verdict badge ("not enough data" and missing verdicts share one)."""
    return _VERDICT_CLASSES.get(verdict or "", "no-data")


@register.filter
def value_of(mapping: dict[Any, Any] | None, key: Any) -> Any:
    """``mapping[key]``, or None when it is missing (for numbers: a missing value shows as a dash)."""
    return None if mapping is None else mapping.get(key)
