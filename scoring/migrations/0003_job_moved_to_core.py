"""Reward models and reports point at core.Job (the same table as before: no database change)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0002_report"),
        ("core", "0001_job_moved_from_pipeline"),
    ]
    # pipeline drops Job from its state next; nothing may point at pipeline.Job by then.
    run_before = [("pipeline", "0004_job_moved_to_core")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="rewardmodel",
                    name="job",
                    field=models.ForeignKey(
                        blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to="core.job"
                    ),
                ),
                migrations.AlterField(
                    model_name="report",
                    name="job",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="core.job",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
