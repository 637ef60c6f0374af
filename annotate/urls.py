"""Routes for labeling (crowd entry, labeling screen) and the admin's worker controls."""

from django.urls import path

from annotate import label_views, views

urlpatterns = [
    path("c/<slug:slug>/start", label_views.crowd_start, name="crowd-start"),
    path("c/<slug:slug>/label/", label_views.label, name="label"),
    path("c/<slug:slug>/label/<int:assignment_id>/submit", label_views.label_submit, name="label-submit"),
    path("c/<slug:slug>/label/<int:assignment_id>/skip", label_views.label_skip, name="label-skip"),
    path("c/<slug:slug>/done/", label_views.label_done, name="label-done"),
    path(
        "campaigns/<slug:slug>/workers/<int:annotator_id>/status",
        views.worker_status,
        name="campaign-worker-status",
    ),
]
