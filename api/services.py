"""Creating, revoking and checking personal API tokens, and the per-token write rate limit."""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from api.models import ApiToken

TOKEN_PREFIX = "vps_"
MAX_TOKENS_PER_USER = 20
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    """A token just made: `token` is the only time its value exists outside the caller's hands."""

    row: ApiToken
    token: str


def api_token_create(*, user: Any, name: str) -> NewToken:
    """Make a personal token for `user`; raises ValueError for an empty name or too many active tokens."""
    name = name.strip()
    if not name:
        raise ValueError("Give the token a name, so you can tell it apart later.")
    if len(name) > 100:
        raise ValueError("A token name is at most 100 characters.")
    if ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() >= MAX_TOKENS_PER_USER:
        raise ValueError(f"You have {MAX_TOKENS_PER_USER} active tokens: revoke one first.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.objects.create(user=user, name=name, prefix=token[:12], key_sha256=token_hash(token))
    return NewToken(row=row, token=token)


def api_token_revoke(*, user: Any, token_id: int) -> bool:
    """Revoke one of the user's own tokens; False when it is not theirs or already revoked."""
    return bool(
        ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


def api_token_user(token: str) -> tuple[ApiToken, Any] | None:
    """The active token row and its active user for a presented token, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    row = (
        ApiToken.objects.select_related("user")
        .filter(key_sha256=token_hash(token), revoked_at__isnull=True)
        .first()
    )
    if row is None or not row.user.is_active:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row, row.user


def write_rate_take(*, key: str) -> float:
    """Count one write under `key` (a token or a session user); 0.0 if allowed, else seconds to wait.

    A fixed window of API_WRITE_RATE_WINDOW_S seconds allows API_WRITE_RATE writes; counts live in the
    cache (Redis in production), so every web process sees the same numbers.
    """
    limit = int(getattr(settings, "API_WRITE_RATE", 600))
    window = int(getattr(settings, "API_WRITE_RATE_WINDOW_S", 60))
    now = time.time()
    slot = int(now // window)
    cache_key = f"api-write:{key}:{slot}"
    if cache.add(cache_key, 1, timeout=window + 1):
        count = 1
    else:
        try:
            count = int(cache.incr(cache_key))
        except ValueError:
            cache.set(cache_key, 1, timeout=window + 1)
            count = 1
    if count <= limit:
        return 0.0
    return max(1.0, math.ceil((slot + 1) * window - now))
