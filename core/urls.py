"""Routes of the jobs pages (namespace "core")."""

from django.urls import path

from core import views

app_name = "core"
urlpatterns = [
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/<int:pk>/", views.job_detail, name="job-detail"),
    path("jobs/<int:pk>/cancel/", views.job_cancel_view, name="job-cancel"),
    path("jobs/<int:pk>/retry/", views.job_retry_view, name="job-retry"),
]
