"""Authentication backend: every password check is rate limited, and the session's user comes with their annotator."""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections, router
from django.http import HttpRequest

from annotate.models import Annotator
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
        # cached "none", so `getattr(user, "annotator", None)` is still free. Plain SQL: compiling the
        # ORM's select_related cost about a fifth of a labeling request's CPU.
        user_model = get_user_model()
        try:
            pk = user_model._meta.pk.to_python(user_id)  # type: ignore[union-attr]
        except ValidationError:
            return None
        user_fields, annotator_fields = _user_columns()
        with connections[router.db_for_read(user_model)].cursor() as cursor:
            cursor.execute(_user_sql(), [pk])
            row = cursor.fetchone()
        if row is None:
            return None
        alias = cursor.db.alias
        user = user_model.from_db(alias, user_fields, row[: len(user_fields)])
        annotator = None
        if row[len(user_fields)] is not None:
            annotator = Annotator.from_db(alias, annotator_fields, row[len(user_fields) :])
            Annotator.user.field.set_cached_value(annotator, user)
        Annotator.user.field.remote_field.set_cached_value(user, annotator)
        return user if self.user_can_authenticate(user) else None


@functools.cache
def _user_columns() -> tuple[list[str], list[str]]:
    user_fields = [f.attname for f in get_user_model()._meta.concrete_fields]
    annotator_fields = [f.attname for f in Annotator._meta.concrete_fields]
    return user_fields, annotator_fields


@functools.cache
def _user_sql() -> str:
    user_meta = get_user_model()._meta
    user_fields, annotator_fields = _user_columns()
    columns = [f'u."{c}"' for c in user_fields] + [f'a."{c}"' for c in annotator_fields]
    return (
        f'SELECT {", ".join(columns)} FROM "{user_meta.db_table}" u '
        f'LEFT JOIN "{Annotator._meta.db_table}" a ON a."{Annotator.user.field.column}" = u."{user_meta.pk.column}" '  # type: ignore[union-attr]
        f'WHERE u."{user_meta.pk.column}" = %s'  # type: ignore[union-attr]
    )
