"""Middleware for /api/ paths: the API's own body caps, and the JSON error shape on every error answer."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from api.auth import request_token
from api.errors import error_response, is_json, reshape
from core.permissions import is_admin

API_PREFIX = "/api/"


def api_body_limit(request: HttpRequest) -> int:
    """The cap for an API request: by the token's user if a valid token is sent, else by the session user."""
    found = request_token(request)
    user = found[1] if found is not None else getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return settings.REQUEST_MAX_BODY_ANONYMOUS
    if is_admin(user):
        return settings.REQUEST_MAX_BODY_API_STAFF
    return settings.REQUEST_MAX_BODY_SIGNED_IN


class ApiBodyLimitMiddleware:
    """413 for an API request whose declared body is over its caller's cap (the core middleware skips /api/).

    A token is only looked up when the body is larger than the anonymous cap, so small requests cost nothing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PREFIX):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or "0")
            except ValueError:
                length = -1
            if length < 0:
                return error_response(400, "Invalid Content-Length.")
            if length > settings.REQUEST_MAX_BODY_ANONYMOUS:
                limit = api_body_limit(request)
                if length > limit:
                    return error_response(
                        413, f"Request body of {length:,} bytes refused: the limit is {limit:,} bytes."
                    )
        return self.get_response(request)


class ApiErrorShapeMiddleware:
    """Under /api/, an error answer that is not JSON (404, 405, 500, a middleware's 400) becomes the error shape."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(API_PREFIX) and response.status_code >= 400 and not is_json(response):
            return reshape(response)
        return response
