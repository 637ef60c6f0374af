"""Middleware every request passes through: body caps, NUL bytes in parameters, the Content-Security-Policy.

`RequestBodyLimitMiddleware` refuses a body by its Content-Length before anything reads it. Django's own
DATA_UPLOAD_MAX_MEMORY_SIZE only bounds form fields; the files of a multipart body are streamed to disk
whatever their size, so without this an anonymous 300 MB POST to /login/ was spooled to disk before the
answer. The cap depends on who asks: anonymous visitors send sign-in forms (REQUEST_MAX_BODY_ANONYMOUS),
signed-in workers send judgments (REQUEST_MAX_BODY_SIGNED_IN), staff upload prompt files
(REQUEST_MAX_BODY_STAFF). The session is only looked at when a body is larger than the anonymous cap.
Paths under REQUEST_BODY_LIMIT_SKIP_PREFIXES (the API) are capped by their own middleware, which also
knows token-authenticated callers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.middleware.gzip import GZipMiddleware


def _body_limit(request: HttpRequest) -> int:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return settings.REQUEST_MAX_BODY_ANONYMOUS
    if user.is_staff:
        return settings.REQUEST_MAX_BODY_STAFF
    return settings.REQUEST_MAX_BODY_SIGNED_IN


class RequestBodyLimitMiddleware:
    """413 for a request whose declared body is over the caller's cap, without reading the body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(declared)
        except ValueError:
            return HttpResponse("Invalid Content-Length.", status=400, content_type="text/plain")
        if length < 0:
            return HttpResponse("Invalid Content-Length.", status=400, content_type="text/plain")
        skip = getattr(settings, "REQUEST_BODY_LIMIT_SKIP_PREFIXES", ())
        if length > settings.REQUEST_MAX_BODY_ANONYMOUS and not (
            skip and request.path.startswith(tuple(skip))
        ):
            limit = _body_limit(request)
            if length > limit:
                return HttpResponse(
                    f"Request body of {length:,} bytes refused: the limit is {limit:,} bytes.",
                    status=413,
                    content_type="text/plain",
                )
        return self.get_response(request)


def _nul_parameter(query: Any) -> str | None:
    for key, values in query.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            return key.replace("\x00", "\\x00")
    return None


class NulParameterMiddleware:
    """400 for a query or form parameter holding a NUL byte: no page wants one, and PostgreSQL text refuses it.

    Without this a NUL in any parameter that reaches a query (a campaign slug, an admin list filter) is a
    500. It runs as a view hook, after the CSRF check has parsed the form already; files are not looked at.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, *_args: Any, **_kwargs: Any) -> HttpResponse | None:
        """Refuse the request before the view runs."""
        bad = _nul_parameter(request.GET)
        if bad is None and request.method == "POST":
            bad = _nul_parameter(request.POST)
        if bad is not None:
            return HttpResponseBadRequest(
                f"Parameter {bad!r} holds a NUL byte.", content_type="text/plain; charset=utf-8"
            )
        return None


class ContentSecurityPolicyMiddleware:
    """Sets the CONTENT_SECURITY_POLICY setting on every response that has none.

    The app loads nothing from elsewhere and has no inline script or style (htmx is vendored, page scripts
    and styles are static files), so the policy is strict: an injected <script> or style attribute would
    not run even if escaping ever failed.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response


_COMPRESSIBLE = ("text/", "application/json", "application/javascript", "image/svg+xml")


class TextGZipMiddleware(GZipMiddleware):
    """Django's GZipMiddleware for text answers only (pages, htmx panes, JSON).

    Images and downloads pass untouched: PNG, JPEG and WebP are compressed already, and gzipping a
    streamed image costs CPU for nothing. Django's gzip pads each answer with random bytes against BREACH
    (https://docs.djangoproject.com/en/5.2/ref/middleware/#module-django.middleware.gzip).
    """

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """Compress a text answer for a client that accepts gzip."""
        if not response.get("Content-Type", "").startswith(_COMPRESSIBLE):
            return response
        return super().process_response(request, response)
