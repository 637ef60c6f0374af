"""The Job model moves from pipeline to core without touching its table or rows.

The state takes over pipeline.Job (same table, ``pipeline_job``); the database gains two columns: the
follow-up jobs and the handler's saved state, both until now kept inside ``params`` ("then", "batch"),
and moved out of it here.
"""

from decimal import Decimal

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def split_params(apps, schema_editor):
    Job = apps.get_model("core", "Job")
    for job in Job.objects.filter(models.Q(params__has_key="then") | models.Q(params__has_key="batch")).iterator():
        params = dict(job.params)
        job.follow_ups = params.pop("then", None) or []
        if "batch" in params:
            job.state = {**(job.state or {}), "batch": params.pop("batch")}
        job.params = params
        job.save(update_fields=["params", "follow_ups", "state"])


def join_params(apps, schema_editor):
    Job = apps.get_model("core", "Job")
    for job in Job.objects.exclude(follow_ups=[], state={}).iterator():
        params = dict(job.params)
        if job.follow_ups:
            params["then"] = job.follow_ups
        if (job.state or {}).get("batch"):
            params["batch"] = job.state["batch"]
        job.params = params
        job.save(update_fields=["params"])


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        # The table was created by pipeline's first migration; core takes it over from there.
        ("pipeline", "0003_judge_key_variable_name"),
        migrations.swappable_dependency(settings.JOBS_CAMPAIGN_MODEL),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Job",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("kind", models.CharField(db_index=True, max_length=16)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("running", "Running"),
                                    ("succeeded", "Succeeded"),
                                    ("failed", "Failed"),
                                    ("cancelled", "Cancelled"),
                                ],
                                db_index=True,
                                default="pending",
                                max_length=12,
                            ),
                        ),
                        ("title", models.CharField(blank=True, max_length=300)),
                        ("params", models.JSONField(blank=True, default=dict)),
                        ("result", models.JSONField(blank=True, default=dict)),
                        ("error", models.TextField(blank=True)),
                        ("log", models.TextField(blank=True)),
                        ("progress_done", models.PositiveIntegerField(default=0)),
                        ("progress_total", models.PositiveIntegerField(default=0)),
                        ("cost_usd", models.DecimalField(decimal_places=6, default=Decimal("0"), max_digits=12)),
                        ("cancel_requested", models.BooleanField(default=False)),
                        ("celery_task_id", models.CharField(blank=True, max_length=64)),
                        ("queue", models.CharField(default="default", max_length=16)),
                        ("attempts", models.PositiveSmallIntegerField(default=0)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "campaign",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="jobs",
                                to=settings.JOBS_CAMPAIGN_MODEL,
                            ),
                        ),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "pipeline_job",
                        "ordering": ["-created_at", "-id"],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("progress_total", 0), ("progress_done__lte", models.F("progress_total")), _connector="OR"),
                                name="job_progress_within_total",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AddField(
            model_name="job",
            name="follow_ups",
            field=models.JSONField(
                blank=True, default=list, help_text="Jobs to queue when this one succeeds: [{kind, params, title}]."
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="state",
            field=models.JSONField(blank=True, default=dict, help_text="What the handler saved to resume."),
        ),
        migrations.RunPython(split_params, join_params),
    ]
