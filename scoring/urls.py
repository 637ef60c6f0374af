"""Routes of the agreement report and the judgments export (namespace "scoring")."""

from django.urls import path

from scoring import export_views, views

app_name = "scoring"
urlpatterns = [
    path("campaigns/<slug:slug>/report/", views.report_page, name="report"),
    path("campaigns/<slug:slug>/report.json", views.report_json, name="report-json"),
    path("campaigns/<slug:slug>/report/refresh/", views.report_refresh, name="report-refresh"),
    path("campaigns/<slug:slug>/report/jobs/<int:job_id>/", views.report_progress, name="report-progress"),
    path(
        "campaigns/<slug:slug>/export/judgments.jsonl", export_views.export_judgments, name="export-judgments"
    ),
    path(
        "campaigns/<slug:slug>/export/judgments/stored/",
        export_views.export_judgments_stored,
        name="export-judgments-stored",
    ),
]
