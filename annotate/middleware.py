"""Middleware of annotate: the sign-in limiter's answers on every login path."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from annotate.services.login_limits import RETRY_AFTER_ATTR, known_browser_cookie_set
from annotate.views.auth import login_throttled


class LoginLimitMiddleware:
    """Answers 429 for throttled sign-ins on any login path, and sets the known-browser cookie."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        wait = getattr(request, RETRY_AFTER_ATTR, 0)
        if wait and response.status_code == 200:  # the login form shown again, not a redirect onwards
            return login_throttled(request, retry_after_s=wait)
        known_browser_cookie_set(request=request, response=response)
        return response
