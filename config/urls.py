"""URL routes of the site: each app's routes, included under its own namespace, and the Django admin."""

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path

from api.urls import api
from core.media import media_serve

urlpatterns: list[URLPattern | URLResolver] = [
    path("", include("annotate.urls")),
    path("", include("core.urls")),
    path("", include("pipeline.urls")),
    path("", include("scoring.urls")),
    path("", include("api.page_urls")),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]
_storage_backend: str = settings.STORAGES["default"]["BACKEND"]  # type: ignore[index]
if _storage_backend.endswith("FileSystemStorage"):
    # Local media (demo, tests, single-box installs): signed, short-lived links for signed-in users only
    # (core/media.py); with an object store the storage backend hands out presigned bucket URLs instead.
    urlpatterns += [
        re_path(r"^media/(?P<path>.*)$", media_serve, {"document_root": settings.MEDIA_ROOT}),
    ]
