"""Who calls the API: a personal token (``Authorization: Bearer vps_...``) or the session (with CSRF).

Two audiences: `admin_auth` lets only admins through (403 for anyone else signed in); `worker_auth` lets
any signed-in, active user through (the labeling endpoints then only touch the caller's own assignments).
Both count writes against the caller's rate limit (per token; per user for a session).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer, SessionAuth

from api.services import api_token_user, write_rate_take
from core.permissions import is_admin

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class RateLimited(Exception):
    """Too many writes: answer 429 with Retry-After."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"Too many write requests: retry in {round(retry_after_s)} s.")
        self.retry_after_s = retry_after_s


def _admit(request: HttpRequest, user: Any, *, admins_only: bool, rate_key: str) -> Any:
    if not user.is_active:
        return None
    if admins_only and not is_admin(user):
        raise HttpError(403, "This endpoint is for admins; your token reaches only the labeling endpoints.")
    if request.method not in SAFE_METHODS:
        wait = write_rate_take(key=rate_key)
        if wait:
            raise RateLimited(wait)
    return user


def request_token(request: HttpRequest) -> tuple[Any, Any] | None:
    """The (token row, user) of the request's bearer token, looked up once per request."""
    if not hasattr(request, "_api_token_found"):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        found = api_token_user(token.strip()) if scheme.lower() == "bearer" and token else None
        request._api_token_found = found  # type: ignore[attr-defined]
    return request._api_token_found  # type: ignore[attr-defined]


class TokenAuth(HttpBearer):
    """A personal API token."""

    def __init__(self, *, admins_only: bool) -> None:
        super().__init__()
        self.admins_only = admins_only

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = request_token(request)
        if found is None:
            return None
        row, user = found
        request.user = user
        request.api_token = row  # type: ignore[attr-defined]
        return _admit(request, user, admins_only=self.admins_only, rate_key=f"token:{row.pk}")


class SessionAuthChecked(SessionAuth):
    """The browser session (CSRF checked on writes, as for the pages)."""

    def __init__(self, *, admins_only: bool) -> None:
        super().__init__()
        self.admins_only = admins_only

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if user is None:
            return None
        return _admit(request, user, admins_only=self.admins_only, rate_key=f"user:{user.pk}")


admin_auth = [TokenAuth(admins_only=True), SessionAuthChecked(admins_only=True)]
worker_auth = [TokenAuth(admins_only=False), SessionAuthChecked(admins_only=False)]
