"""Routes of the agreement report, the judgments export and the reward models (namespace "scoring")."""

from django.urls import path

from scoring import export_views, views, vpscore_views

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
    path("reward-models/", vpscore_views.reward_model_list, name="reward-models"),
    path("reward-models/<int:pk>/", vpscore_views.reward_model_detail, name="reward-model"),
    path("reward-models/<int:pk>.json", vpscore_views.reward_model_json, name="reward-model-json"),
    path(
        "reward-models/<int:pk>/progress/", vpscore_views.reward_model_progress, name="reward-model-progress"
    ),
    path("reward-models/<int:pk>/score/", vpscore_views.reward_model_score, name="reward-model-score"),
    path(
        "reward-models/<int:pk>/score.json",
        vpscore_views.reward_model_score_images,
        name="reward-model-score-images",
    ),
]
