"""Template filters shared by every app's pages."""

from __future__ import annotations

from typing import Any

from django import template
from django.middleware.csrf import get_token
from django.utils.html import format_html

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


@register.simple_tag(takes_context=True)
def csrf_field(context: dict[str, Any]) -> str:
    """The CSRF form input, without making the answer set the csrftoken cookie again.

    `{% csrf_token %}` flags the cookie for renewal, so every htmx pane it is in re-sends Set-Cookie. A
    browser that already has the cookie keeps it (the full page load renews it); one without gets it.
    """
    request = context.get("request")
    if request is None:
        return ""
    had_cookie = "CSRF_COOKIE" in request.META
    renew = request.META.get("CSRF_COOKIE_NEEDS_UPDATE", False)
    token = get_token(request)
    if had_cookie:
        request.META["CSRF_COOKIE_NEEDS_UPDATE"] = renew
    return format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', token)
