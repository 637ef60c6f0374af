"""One error shape for every answer under /api/: ``{"detail": str, "errors": [{"loc": [...], "msg": str}]}``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

REASONS = {
    400: "Bad request.",
    401: "Authentication required: send 'Authorization: Bearer <token>' or sign in.",
    403: "Not allowed.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
    429: "Too many requests.",
    500: "Server error.",
}


def error_body(detail: str, errors: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """The error document."""
    return {
        "detail": detail,
        "errors": [{"loc": list(e.get("loc", [])), "msg": str(e["msg"])} for e in errors],
    }


def error_response(
    status: int, detail: str, errors: Iterable[dict[str, Any]] = (), **headers: str
) -> JsonResponse:
    """A JSON error answer with `status`."""
    response = JsonResponse(error_body(detail, errors), status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def validation_errors(raw: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ninja/pydantic validation errors as {loc, msg}."""
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "invalid")} for e in raw]


def is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def reshape(response: HttpResponse) -> HttpResponse:
    """A plain (HTML or text) error answer under /api/ turned into the error document, same status."""
    text = ""
    content_type = response.get("Content-Type", "")
    if content_type.startswith("text/plain") and not getattr(response, "streaming", False):
        text = response.content.decode(errors="replace").strip()[:500]
    detail = text or REASONS.get(response.status_code, response.reason_phrase or "Error.")
    shaped = error_response(response.status_code, detail)
    for header in ("Retry-After", "Allow", "WWW-Authenticate"):
        if header in response:
            shaped[header] = response[header]
    return shaped


def json_detail(response: HttpResponse) -> str:
    """The detail of a JSON error answer (for tests and logs)."""
    return str(json.loads(response.content).get("detail", ""))


def log_unexpected(request: HttpRequest, exc: Exception) -> None:
    logger.exception("API error on %s %s", request.method, request.path, exc_info=exc)
