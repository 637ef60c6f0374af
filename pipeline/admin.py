"""Django admin for jobs, AI judge configurations and MLLM calls."""

from django.contrib import admin

from pipeline.models import AICall, AIJudgeConfig, Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "title",
        "status",
        "progress_done",
        "progress_total",
        "cost_usd",
        "created_at",
    ]
    list_filter = ["kind", "status", "queue"]
    search_fields = ["title", "celery_task_id", "error"]
    raw_id_fields = ["campaign", "created_by"]


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
