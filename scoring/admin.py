"""Django admin for reward models, image scores and cached agreement reports."""

from django.contrib import admin
from django.http import HttpRequest

from scoring.models import ImageScore, Report, RewardModel


@admin.register(RewardModel)
class RewardModelAdmin(admin.ModelAdmin):
    list_display = ["name", "backbone", "label_source", "status", "created_at"]
    list_filter = ["status", "label_source"]
    search_fields = ["name", "backbone"]


@admin.register(ImageScore)
class ImageScoreAdmin(admin.ModelAdmin):
    list_display = ["image", "reward_model", "aspect", "score"]
    list_filter = ["reward_model", "aspect"]
    search_fields = ["reward_model__name", "image__sha256", "image__prompt__text"]
    raw_id_fields = ["image"]


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    """Cached reports are written only by the report job; admins look them up and delete stale ones."""

    list_display = ["id", "campaign", "n_judgments", "schema_version", "job", "created_at"]
    list_filter = ["campaign", "schema_version", "created_at"]
    search_fields = ["campaign__name", "campaign__slug", "params_hash"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "campaign",
        "params_hash",
        "parameters",
        "schema_version",
        "data",
        "n_judgments",
        "job",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Report | None = None) -> bool:
        return False
