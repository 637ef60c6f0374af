"""Sign-in pages: Django's own login view (annotate.urls) and the page of a throttled attempt.

The limiter runs inside `authenticate()` (annotate.auth_backends, policy in annotate.services.login_limits),
so /login/ and /admin/login/ share it; annotate.middleware.LoginLimitMiddleware shows this page.
"""

from __future__ import annotations

import math

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def login_throttled(request: HttpRequest, *, retry_after_s: float) -> HttpResponse:
    """The 429 page of a sign-in attempt made before its wait was over."""
    seconds = max(1, math.ceil(retry_after_s))
    response = render(
        request, "registration/login_locked.html", {"seconds": seconds, "retry_url": request.path}, status=429
    )
    response["Retry-After"] = str(seconds)
    return response
