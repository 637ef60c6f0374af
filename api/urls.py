"""The NinjaAPI under /api/v1/: routers, one error shape for every exception, the docs page's CSP."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError
from ninja.openapi.docs import Swagger

from annotate.services.assignments import AssignmentError
from annotate.services.judgments import JudgmentInvalid
from api.auth import RateLimited
from api.endpoints import campaigns, data, jobs, labeling, reports
from api.errors import REASONS, error_response, log_unexpected, validation_errors
from api.schemas import Error
from pipeline.services.prompt_import import PromptImportError
from scoring.services.judgments_io import JudgmentImportError

_LINE = re.compile(r"line (\d+)(?:, field '(\w+)')?")

ERROR_STATUSES = {
    "400": "Refused input (the detail says what to change).",
    "401": REASONS[401],
    "403": REASONS[403],
    "404": REASONS[404],
    "422": "The request does not match the schema (each error names its location).",
    "429": "Too many write requests; see the Retry-After header.",
}


class StudioAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document lists the error document for the error statuses of every operation."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(*args, **kwargs)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        error = Error.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(error.pop("$defs", {}))
        components["Error"] = error
        for item in schema["paths"].values():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                statuses = {**ERROR_STATUSES, **({"413": REASONS[413]} if method != "get" else {})}
                for status, description in statuses.items():
                    if int(status) in responses:
                        continue  # declared by the operation itself (ninja keys those by int)
                    responses.setdefault(
                        status,
                        {
                            "description": description,
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                            },
                        },
                    )
        return schema


api = StudioAPI(
    title="VisionPrefer Studio API",
    version="1",
    description="Campaigns, prompts, images, pairs, judgments, jobs, reports, and labeling. See docs/api.md.",
    urls_namespace="api-v1",
    # Swagger UI from ninja's vendored static files ("ninja" is an installed app): no CDN. It runs under the
    # site's strict policy unchanged (tests/e2e/test_api_docs_browser.py: no violation while it renders,
    # tries an operation out and shows the models), so the docs page gets no relaxation.
    docs=Swagger(),
    docs_url="/docs",
    openapi_url="/openapi.json",
)
for module in (campaigns, data, jobs, reports, labeling):
    api.add_router("", module.router)


@api.exception_handler(ValidationError)
def _validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return error_response(422, "The request is not valid.", validation_errors(exc.errors))


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(401, REASONS[401], WWW_Authenticate="Bearer")


@api.exception_handler(AuthorizationError)
def _forbidden_ninja(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(403, REASONS[403])


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error_response(exc.status_code, str(exc) or REASONS.get(exc.status_code, "Error."))


@api.exception_handler(RateLimited)
def _rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    return error_response(429, str(exc), Retry_After=str(max(1, round(exc.retry_after_s))))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(404, str(exc) or REASONS[404])


@api.exception_handler(PermissionDenied)
def _permission_denied(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(403, str(exc) or REASONS[403])


@api.exception_handler(JudgmentInvalid)
def _judgment_invalid(request: HttpRequest, exc: JudgmentInvalid) -> HttpResponse:
    errors = [{"loc": ["body", "choices", key], "msg": msg} for key, msg in exc.errors.items()]
    return error_response(422, str(exc), errors)


@api.exception_handler(AssignmentError)
def _assignment_refused(request: HttpRequest, exc: AssignmentError) -> HttpResponse:
    return error_response(exc.status, str(exc))


def _line_loc(message: str, key: str) -> list[str]:
    # The importers name "line N, field 'x'"; line N is item N - 1 of the request's list.
    found = _LINE.match(message)
    if found is None:
        return ["body", key]
    loc = ["body", key, str(int(found.group(1)) - 1)]
    return [*loc, found.group(2)] if found.group(2) else loc


@api.exception_handler(JudgmentImportError)
def _import_refused(request: HttpRequest, exc: JudgmentImportError) -> HttpResponse:
    return error_response(
        400,
        "Nothing was stored: fix these judgments.",
        ({"loc": _line_loc(e, "judgments"), "msg": e} for e in exc.errors),
    )


@api.exception_handler(PromptImportError)
def _prompts_refused(request: HttpRequest, exc: PromptImportError) -> HttpResponse:
    errors = getattr(exc, "errors", [str(exc)])
    return error_response(
        400,
        "Nothing was stored: fix these prompts.",
        ({"loc": _line_loc(e, "prompts"), "msg": e} for e in errors),
    )


@api.exception_handler(DjangoValidationError)
def _model_invalid(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    # A model's own checks (full_clean in a service): each message under its field.
    if hasattr(exc, "error_dict"):
        pairs = [(["body", field], m) for field, msgs in exc.message_dict.items() for m in msgs]
    else:
        pairs = [(["body"], m) for m in exc.messages]
    errors = [{"loc": loc, "msg": msg} for loc, msg in pairs]
    return error_response(400, "; ".join(msg for _, msg in pairs) or "Invalid values.", errors)


@api.exception_handler(DataError)
def _data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
    # What no schema caught: a NUL byte in a path parameter, a number out of the column's range.
    return error_response(400, "A value the database cannot store (a NUL byte, a number out of range).")


@api.exception_handler(ValueError)
def _bad_value(request: HttpRequest, exc: ValueError) -> HttpResponse:
    # Services raise ValueError (and subclasses: unknown job kind, bad job params, rejected image) for input
    # they refuse; the message says what to change.
    return error_response(400, str(exc))


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    log_unexpected(request, exc)
    return error_response(500, REASONS[500])
