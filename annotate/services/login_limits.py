"""The one sign-in limiter: every password check (/login/, /admin/login/, any later path) goes through it.

It sits in the authentication backend (annotate.auth_backends), which Django's `authenticate()` calls for
every login form, so no login path can be added without it. The policy slows guessing down and never
locks a correct password out:

- **Account and address.** Attempts on one account from one client address (core.ratelimit.client_address:
  behind a TLS proxy, the address the trusted proxy saw) get LOGIN_FREE_ATTEMPTS tries, then one try per
  delay, doubling from LOGIN_BACKOFF_BASE_S up to LOGIN_BACKOFF_MAX_S (60 s): a correct password still
  signs in, at worst after that delay. An attempt made before the delay is over is answered 429 with
  Retry-After and its password is not checked, so guessing runs at one try a minute at best.
- **Address.** One address trying many accounts gets LOGIN_FREE_ATTEMPTS_PER_ADDRESS tries (across all
  accounts), then the same backoff. This is a slow-down too, not a lockout, and it is never applied to a
  browser that has signed in to the account before:
- **Known browsers.** A successful sign-in leaves a signed cookie naming the account (not a session: it
  survives logout). With it, attempts on that account are counted for that browser alone, apart from the
  address: an admin behind the same proxy or NAT as someone guessing passwords is never slowed by them.
  The cookie cannot be forged, and a stolen one only gives its holder the same backoff.

Counters live in Django's cache (Redis in production, shared by every web process). Request-less calls to
`authenticate()` (scripts, the test client) are counted under the address "unknown".
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse

from core.ratelimit import Backoff, client_address

DEVICE_COOKIE = "vp_known_browser"
DEVICE_SALT = "annotate.login-known-browser"
DEVICE_MAX_AGE_S = 180 * 24 * 3600
# Request attributes the middleware turns into a 429 page or a cookie on the response.
RETRY_AFTER_ATTR = "login_retry_after_s"
DEVICE_ATTR = "login_known_browser"


def _policies() -> tuple[Backoff, Backoff]:
    window = settings.LOGIN_WINDOW_S
    base, top = settings.LOGIN_BACKOFF_BASE_S, settings.LOGIN_BACKOFF_MAX_S
    account = Backoff("login:account", settings.LOGIN_FREE_ATTEMPTS, window, base, top)
    address = Backoff("login:address", settings.LOGIN_FREE_ATTEMPTS_PER_ADDRESS, window, base, top)
    return account, address


def _account_digest(username: str) -> str:
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()[:24]


def _known_browser(request: HttpRequest | None, account: str) -> str | None:
    """The browser token of a valid known-browser cookie for this account, else None."""
    if request is None:
        return None
    raw = request.COOKIES.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        value = signing.loads(raw, salt=DEVICE_SALT, max_age=DEVICE_MAX_AGE_S)
    except signing.BadSignature:
        return None
    if not isinstance(value, dict) or value.get("a") != account or not isinstance(value.get("b"), str):
        return None
    return value["b"]


@dataclass(frozen=True)
class LoginAttempt:
    """One password check in progress: the scopes it was counted in, or how long to wait."""

    account_key: str
    address_key: str | None
    retry_after_s: float

    @property
    def allowed(self) -> bool:
        return self.retry_after_s == 0


def login_attempt_begin(*, request: HttpRequest | None, username: str) -> LoginAttempt:
    """Count a sign-in attempt before its password is checked; `allowed` is False while it must wait."""
    account_policy, address_policy = _policies()
    account = _account_digest(username)
    browser = _known_browser(request, account)
    if browser is not None:
        account_key, address_key = f"{account}:browser:{browser}", None
    else:
        address = client_address(request)
        account_key, address_key = f"{account}:{address}", address
    wait = account_policy.take(account_key)
    if wait == 0 and address_key is not None:
        wait = address_policy.take(address_key)
        if wait:
            account_policy.release(account_key)  # refused before any password was checked
    attempt = LoginAttempt(account_key=account_key, address_key=address_key, retry_after_s=wait)
    if wait and request is not None:
        setattr(request, RETRY_AFTER_ATTR, wait)
    return attempt


def login_attempt_failed(*, attempt: LoginAttempt) -> None:
    """A wrong password: the next attempt in the same scopes waits once the free ones are used up."""
    account_policy, address_policy = _policies()
    account_policy.hold(attempt.account_key)
    if attempt.address_key is not None:
        address_policy.hold(attempt.address_key)


def login_attempt_succeeded(*, request: HttpRequest | None, attempt: LoginAttempt, username: str) -> None:
    """The right password: forget this account's failures here and remember the browser."""
    account_policy, address_policy = _policies()
    account_policy.clear(attempt.account_key)
    if attempt.address_key is not None:
        address_policy.release(attempt.address_key)  # other accounts' failures from here stay counted
    if request is not None:
        token = secrets.token_urlsafe(12)
        value = signing.dumps({"a": _account_digest(username), "b": token}, salt=DEVICE_SALT)
        setattr(request, DEVICE_ATTR, value)


def known_browser_cookie_set(*, request: HttpRequest, response: HttpResponse) -> None:
    """Put the known-browser cookie a successful sign-in left on the request onto its response."""
    value = getattr(request, DEVICE_ATTR, None)
    if value:
        response.set_cookie(
            DEVICE_COOKIE,
            value,
            max_age=DEVICE_MAX_AGE_S,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
