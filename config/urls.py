"""URL routes for the whole site."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import include, path, re_path
from django.views.static import serve

from annotate import views as annotate_views
from annotate.auth_views import RateLimitedLoginView
from pipeline import annotation_views, generation_views
from pipeline import views as pipeline_views

urlpatterns = [
    path("", annotate_views.home, name="home"),
    path("login/", RateLimitedLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("campaigns/<slug:slug>/", annotate_views.campaign_detail, name="campaign-detail"),
    path("jobs/", pipeline_views.job_list, name="job-list"),
    path("jobs/demo/", pipeline_views.job_demo_start, name="job-demo-start"),
    path("jobs/<int:pk>/", pipeline_views.job_detail, name="job-detail"),
    path("jobs/<int:pk>/cancel/", pipeline_views.job_cancel_view, name="job-cancel"),
    path("campaigns/<slug:slug>/generate/", generation_views.campaign_generate, name="campaign-generate"),
    path("generators/", generation_views.generator_list, name="generator-list"),
    path("prompts/import/", generation_views.prompt_import, name="prompt-import"),
    path("prompts/polish/", generation_views.polish_launch, name="prompt-polish"),
    path("ai/judges/", annotation_views.judge_list, name="ai-judges"),
    path("ai/annotate/", annotation_views.annotate_launch, name="ai-annotate"),
    path("ai/annotate/estimate/", annotation_views.annotate_estimate, name="ai-annotate-estimate"),
    path("ai/jobs/<int:pk>/calls/", annotation_views.job_calls, name="ai-job-calls"),
    path("ai/calls/<int:pk>/", annotation_views.call_detail, name="ai-call-detail"),
    path("", include("annotate.urls")),
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
