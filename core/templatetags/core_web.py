"""Template filters shared by every app's pages."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def width_class(percent: Any) -> str:
    """The CSS class (w-0 … w-100, static/css/widths.css) that sets a bar to `percent` % wide.

    Bars are sized by class rather than a style attribute because the Content-Security-Policy allows no
    inline styles.
    """
    try:
        value = round(float(percent))
    except (TypeError, ValueError):
        value = 0
    return f"w-{min(100, max(0, value))}"
