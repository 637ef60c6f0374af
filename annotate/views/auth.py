"""Sign-in with rate limiting: repeated failures for one IP and username, or one IP, are refused for a while.

Counters live in Django's cache (Redis in production, so they hold across web processes). Only failures
count, and a successful sign-in clears the counter for that IP and username.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

MAX_FAILURES_PER_USERNAME = 5  # per IP and username
MAX_FAILURES_PER_IP = 30  # guessing across many usernames from one address
WINDOW_SECONDS = 15 * 60


def _client_ip(request: HttpRequest) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is set by the client unless a trusted proxy rewrites it.
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _keys(request: HttpRequest) -> tuple[str, str]:
    ip = _client_ip(request)
    username = request.POST.get("username", "").strip().lower()
    digest = hashlib.sha256(f"{ip}|{username}".encode()).hexdigest()[:32]
    return f"login-fail:user:{digest}", f"login-fail:ip:{ip}"


def _count(key: str) -> int:
    return int(cache.get(key) or 0)


def _bump(key: str) -> None:
    # add() is a no-op when the key exists, so the window starts at the first failure.
    if not cache.add(key, 1, timeout=WINDOW_SECONDS):
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.set(key, 1, timeout=WINDOW_SECONDS)


class RateLimitedLoginView(LoginView):
    """Django's login view, refusing with 429 after too many failed attempts."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user_key, ip_key = _keys(request)
        if _count(user_key) >= MAX_FAILURES_PER_USERNAME or _count(ip_key) >= MAX_FAILURES_PER_IP:
            context = {"minutes": WINDOW_SECONDS // 60}
            return render(request, "registration/login_locked.html", context, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        user_key, ip_key = _keys(self.request)
        _bump(user_key)
        _bump(ip_key)
        return super().form_invalid(form)

    def form_valid(self, form: Any) -> HttpResponse:
        cache.delete(_keys(self.request)[0])
        return super().form_valid(form)
