"""Django admin for jobs."""

from django.contrib import admin

from core.models import Job


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
