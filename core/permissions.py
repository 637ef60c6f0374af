"""Access rules every app's views share: admins are active staff users."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


def is_admin(user: Any) -> bool:
    """Admins run campaigns, jobs and exports."""
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let admins through; send anonymous users to login; refuse everyone else with 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_admin(request.user):
            raise PermissionDenied("This page is for admins.")
        return view(request, *args, **kwargs)

    return wrapper
