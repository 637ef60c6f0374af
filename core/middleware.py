"""Middleware every response passes through: request body caps and the Content-Security-Policy header.

`RequestBodyLimitMiddleware` refuses a body by its Content-Length before anything reads it. Django's own
DATA_UPLOAD_MAX_MEMORY_SIZE only bounds form fields; the files of a multipart body are streamed to disk
whatever their size, so without this an anonymous 300 MB POST to /login/ was spooled to disk before the
answer. The cap depends on who asks: anonymous visitors send sign-in forms (REQUEST_MAX_BODY_ANONYMOUS),
signed-in workers send judgments (REQUEST_MAX_BODY_SIGNED_IN), staff upload prompt files
(REQUEST_MAX_BODY_STAFF). The session is only looked at when a body is larger than the anonymous cap.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


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
        if length > settings.REQUEST_MAX_BODY_ANONYMOUS:
            limit = _body_limit(request)
            if length > limit:
                return HttpResponse(
                    f"Request body of {length:,} bytes refused: the limit is {limit:,} bytes.",
                    status=413,
                    content_type="text/plain",
                )
        return self.get_response(request)
