"""URL routes of the site: each app's routes, included under its own namespace, and the Django admin."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.static import serve

urlpatterns: list[URLPattern | URLResolver] = [
    path("", include("annotate.urls")),
    path("", include("core.urls")),
    path("", include("pipeline.urls")),
    path("", include("scoring.urls")),
    path("admin/", admin.site.urls),
]
_storage_backend: str = settings.STORAGES["default"]["BACKEND"]  # type: ignore[index]
if _storage_backend.endswith("FileSystemStorage"):
    # Local media (demo, tests, single-box installs), for signed-in users only; with an object store
    # the storage backend hands out (signed) bucket URLs instead.
    urlpatterns += [
        re_path(r"^media/(?P<path>.*)$", login_required(serve), {"document_root": settings.MEDIA_ROOT}),
    ]
