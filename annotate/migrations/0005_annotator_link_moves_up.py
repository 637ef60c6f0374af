"""Annotator.ai_config goes (pipeline 0005 copied each link to AIJudgeConfig.annotator first).

The check constraint now says only what annotate knows: a human has a user account, nothing else has one.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotate", "0004_labeling"),
        ("pipeline", "0005_judge_annotator_link"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="annotator", name="annotator_kind_matches_link"),
        migrations.RemoveField(model_name="annotator", name="ai_config"),
        migrations.AddConstraint(
            model_name="annotator",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("kind", "human"), ("user__isnull", False)),
                    models.Q(models.Q(("kind", "human"), _negated=True), ("user__isnull", True)),
                    _connector="OR",
                ),
                name="annotator_kind_matches_link",
            ),
        ),
    ]
