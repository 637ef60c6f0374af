"""Local media behind short-lived signed links: the page that shows an image is the permission to load it.

Images belong to campaigns, and only the pages a user may open show them: a campaign's admin pages, a
worker's own reserved pairs on the labeling screen. Every image URL the local storage hands out
(`config.storage.SignedFileSystemStorage`) carries an expiry and an HMAC of the file name and expiry, and
`media_serve` answers only a valid, unexpired link (and only to a signed-in user). A path guessed or kept
from an old page answers 403, so a draft campaign's images are not readable by someone who was never shown
them. With an S3-compatible store, the store's own presigned links do the same.

Links are cheap to make (one HMAC, no query) and stable for half their lifetime: the expiry is rounded up
to a step of MEDIA_URL_MAX_AGE_S / 2, so a browser caches an image across the pages of that period
instead of downloading it again for every new link.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import import_module
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseForbidden
from django.http.response import HttpResponseBase
from django.utils.crypto import constant_time_compare, salted_hmac
from django.views.static import serve

_SALT = "core.media.signed-link"


def _signature(name: str, expires: int) -> str:
    return salted_hmac(_SALT, f"{name}\n{expires}", algorithm="sha256").hexdigest()[:40]


def media_link_query(name: str, *, now: float | None = None) -> str:
    """The query string (expiry and signature) that makes a link to media file `name` valid for a while."""
    max_age = int(settings.MEDIA_URL_MAX_AGE_S)
    step = max(1, max_age // 2)
    now = time.time() if now is None else now
    # Rounded up to the next step, then one more: valid for between half and all of max_age.
    expires = (int(now) // step + 2) * step
    return urlencode({"exp": expires, "sig": _signature(name, expires)})


def media_link_valid(name: str, *, expires: str, signature: str, now: float | None = None) -> bool:
    """Whether `signature` signs `name` until `expires`, and that moment is still ahead."""
    if not (expires.isascii() and expires.isdigit()):
        return False
    deadline = int(expires)
    now = time.time() if now is None else now
    if deadline < now or deadline > now + 2 * int(settings.MEDIA_URL_MAX_AGE_S):
        return False
    return constant_time_compare(signature, _signature(name, deadline))


def _serve_signed(request: HttpRequest, path: str, document_root: str) -> HttpResponse | FileResponse:
    if not media_link_valid(path, expires=request.GET.get("exp", ""), signature=request.GET.get("sig", "")):
        return HttpResponseForbidden("This image link is not valid (or no longer): reload the page.")
    response = serve(request, path, document_root=document_root)
    # The link stays valid until exp and files are content-addressed, so a cached copy never goes stale:
    # the browser keeps it for the link's whole life and never asks again (immutable: not even on reload).
    remaining = max(0, int(request.GET["exp"]) - int(time.time()))
    response["Cache-Control"] = f"private, max-age={remaining}, immutable"
    return response


@login_required
def media_serve(
    request: HttpRequest, path: str, document_root: str, **kwargs: Any
) -> HttpResponse | FileResponse:
    """A local media file for a signed, unexpired link; 403 for any other request."""
    return _serve_signed(request, path, document_root)


class SignedMediaMiddleware:
    """Answers local media links before the rest of the stack, as WhiteNoise does for static files.

    An image costs a browser one request per pair side, so it skips what a page needs and an image does
    not: CSRF, messages, htmx, URL resolution, and loading the user (one query). "Signed in" is read
    from the session alone (a session that holds a user id), which is what login_required asks of an
    image; the signed link is the permission. Installed only with local media storage (config.urls
    keeps `media_serve` for the same links where it is not).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.prefix = settings.MEDIA_URL
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        backend: str = settings.STORAGES["default"]["BACKEND"]  # type: ignore[index]
        local = backend.endswith("FileSystemStorage")
        if (
            not local
            or not request.path_info.startswith(self.prefix)
            or request.method not in ("GET", "HEAD")
        ):
            return self.get_response(request)
        key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if not key or self.session_store(key).get(SESSION_KEY) is None:
            return redirect_to_login(request.get_full_path())
        return _serve_signed(request, request.path_info[len(self.prefix) :], str(settings.MEDIA_ROOT))
