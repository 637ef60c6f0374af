"""Routes of annotate's pages (namespace "annotate"): sign-in, dashboard, campaigns and their settings, prompts,
members, the data (pairs, judgments, workers), crowd entry and labeling."""

from django.contrib.auth import views as auth_views
from django.urls import path

from annotate.views import campaign_settings, campaigns, data, labeling, members, prompts

app_name = "annotate"
urlpatterns = [
    path("", campaigns.home, name="home"),
    # Rate limited like every login path: the limiter is in the authentication backend.
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("invite/<uidb64>/<token>/", members.invite_accept, name="invite-accept"),
    # Before campaigns/<slug>/, which would read "new" as a slug (campaign_save never makes that slug).
    path("campaigns/new/", campaign_settings.campaign_create, name="campaign-create"),
    path("campaigns/settings-check/", campaign_settings.campaign_check, name="campaign-check"),
    path("campaigns/<slug:slug>/", campaigns.campaign_detail, name="campaign-detail"),
    path("campaigns/<slug:slug>/settings/", campaign_settings.campaign_edit, name="campaign-edit"),
    path("campaigns/<slug:slug>/prompts/", prompts.prompt_list, name="campaign-prompts"),
    path("campaigns/<slug:slug>/prompts/action/", prompts.prompt_action, name="campaign-prompts-action"),
    path("campaigns/<slug:slug>/pairs/", data.pair_list, name="pair-list"),
    path("campaigns/<slug:slug>/pairs/<int:pair_id>/", data.pair_detail, name="pair-detail"),
    path("campaigns/<slug:slug>/members/", members.member_list, name="campaign-members"),
    path("campaigns/<slug:slug>/members/invite/", members.member_invite, name="campaign-members-invite"),
    path("campaigns/<slug:slug>/members/bulk/", members.member_bulk, name="campaign-members-bulk"),
    path(
        "campaigns/<slug:slug>/members/<int:annotator_id>/remove/",
        members.member_remove,
        name="campaign-member-remove",
    ),
    path(
        "campaigns/<slug:slug>/workers/<int:annotator_id>/status",
        campaigns.worker_status,
        name="campaign-worker-status",
    ),
    path("judgments/<int:judgment_id>/review/", data.judgment_review, name="judgment-review"),
    path("workers/<int:annotator_id>/", data.worker_detail, name="worker-detail"),
    path("c/<slug:slug>/start", labeling.crowd_start, name="crowd-start"),
    path("c/<slug:slug>/label/", labeling.label, name="label"),
    path("c/<slug:slug>/label/<int:assignment_id>/submit", labeling.label_submit, name="label-submit"),
    path("c/<slug:slug>/label/<int:assignment_id>/skip", labeling.label_skip, name="label-skip"),
    path("c/<slug:slug>/label/<int:assignment_id>/undo", labeling.label_undo, name="label-undo"),
    path("c/<slug:slug>/done/", labeling.label_done, name="label-done"),
]
