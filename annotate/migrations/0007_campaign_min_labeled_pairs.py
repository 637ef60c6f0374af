"""Campaign.min_labeled_pairs: labeled (not skipped) pairs a crowdworker needs for the completion code."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotate", "0006_study_campaign_settings_review_invites"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="min_labeled_pairs",
            field=models.PositiveIntegerField(
                blank=True,
                help_text=(
                    "Labeled pairs a worker needs for the completion code (skips never count); empty: the "
                    "worker quota, or 1. Fewer earn it only when no pair is left for them."
                ),
                null=True,
            ),
        ),
    ]
