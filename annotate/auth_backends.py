"""Authentication backend: every password check is rate limited, and the session's user comes with their annotator."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from annotate.services.login_limits import (
    login_attempt_begin,
    login_attempt_failed,
    login_attempt_succeeded,
)


class UserAnnotatorBackend(ModelBackend):
    """ModelBackend behind the sign-in limiter, whose session lookup joins the user's annotator."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        # Every login form calls authenticate(), so the limiter here covers /login/, /admin/login/ and any
        # later path alike (annotate.services.login_limits explains the policy).
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        attempt = login_attempt_begin(request=request, username=str(username))
        if not attempt.allowed:
            # Refused before the password is checked; PermissionDenied stops authenticate() trying any
            # other backend. The middleware answers 429 with Retry-After.
            raise PermissionDenied("too many sign-in attempts")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_attempt_failed(attempt=attempt)
        else:
            login_attempt_succeeded(request=request, attempt=attempt, username=str(username))
        return user

    def get_user(self, user_id: Any) -> Any:
        # One query instead of two per labeling request; a user without an annotator (an admin) gets a
        # cached "none", so `getattr(user, "annotator", None)` is still free.
        user = get_user_model()._default_manager.select_related("annotator").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None
