"""Template filters of annotate's pages: guidelines as safe Markdown, choices as the worker saw them."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from annotate.markdown import markdown_to_safe_html

register = template.Library()


@register.filter
def guidelines(text: str) -> SafeString:
    """Campaign guidelines (Markdown) as sanitised HTML."""
    return mark_safe(markdown_to_safe_html(text or ""))  # noqa: S308 - sanitised by nh3 with an allow-list


@register.filter
def seen_side(choice: str, presented_order: str) -> str:
    """A canonical choice (A/B/tie) as the side the judge saw it on: left, right or tie."""
    if choice == "tie":
        return "tie"
    a_left = presented_order != "BA"
    return "left" if (choice == "A") == a_left else "right"


@register.filter
def get_item(mapping: dict, key: str) -> object:
    """mapping[key] in a template (empty when missing)."""
    return mapping.get(key, "") if isinstance(mapping, dict) else ""


@register.filter
def is_single_checkbox(bound_field: object) -> bool:
    """True for a one-checkbox field (its label goes beside the box), False for lists of checkboxes."""
    widget = getattr(getattr(bound_field, "field", None), "widget", None)
    return getattr(widget, "input_type", "") == "checkbox" and not getattr(
        widget, "allow_multiple_selected", False
    )
