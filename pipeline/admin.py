"""Django admin for AI judge configurations and MLLM calls."""

from django.contrib import admin

from pipeline.models import AICall, AIJudgeConfig


@admin.register(AIJudgeConfig)
class AIJudgeConfigAdmin(admin.ModelAdmin):
    list_display = ["name", "provider", "model", "mode", "swap_trial", "concurrency", "template_version"]
    list_filter = ["provider", "mode"]
    search_fields = ["name", "model", "base_url"]


@admin.register(AICall)
class AICallAdmin(admin.ModelAdmin):
    list_display = ["id", "judge", "job", "pair", "trial", "status", "attempts", "latency_s", "error_reason"]
    list_filter = ["status", "judge", "error_reason"]
    search_fields = ["raw_response", "error_message"]
    raw_id_fields = ["job", "pair", "prompt"]
