"""Routes of annotate's pages (namespace "annotate"): sign-in, dashboard, campaigns, crowd entry, labeling."""

from django.contrib.auth import views as auth_views
from django.urls import path

from annotate.views import campaigns, labeling

app_name = "annotate"
urlpatterns = [
    path("", campaigns.home, name="home"),
    # Rate limited like every login path: the limiter is in the authentication backend.
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("campaigns/<slug:slug>/", campaigns.campaign_detail, name="campaign-detail"),
    path(
        "campaigns/<slug:slug>/workers/<int:annotator_id>/status",
        campaigns.worker_status,
        name="campaign-worker-status",
    ),
    path("c/<slug:slug>/start", labeling.crowd_start, name="crowd-start"),
    path("c/<slug:slug>/label/", labeling.label, name="label"),
    path("c/<slug:slug>/label/<int:assignment_id>/submit", labeling.label_submit, name="label-submit"),
    path("c/<slug:slug>/label/<int:assignment_id>/skip", labeling.label_skip, name="label-skip"),
    path("c/<slug:slug>/done/", labeling.label_done, name="label-done"),
]
