"""Template filters of the jobs pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def first_line(text: str, limit: int = 160) -> str:
    """The first non-empty line of a text, cut to `limit` characters (a failed job's one-line reason)."""
    for line in (text or "").splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""
