"""Django admin for reward models and image scores."""

from django.contrib import admin

from scoring.models import ImageScore, RewardModel


@admin.register(RewardModel)
class RewardModelAdmin(admin.ModelAdmin):
    list_display = ["name", "backbone", "label_source", "status", "created_at"]
    list_filter = ["status", "label_source"]
    search_fields = ["name", "backbone"]


@admin.register(ImageScore)
class ImageScoreAdmin(admin.ModelAdmin):
    list_display = ["image", "reward_model", "aspect", "score"]
    list_filter = ["reward_model", "aspect"]
    raw_id_fields = ["image"]
