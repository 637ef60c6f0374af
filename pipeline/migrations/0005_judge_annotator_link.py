"""The link between an AI judge and its annotator moves up: AIJudgeConfig.annotator replaces Annotator.ai_config.

annotate then names nothing in the layers above it. The rows keep their links: each judge's annotator is
copied over before annotate drops its column (annotate 0005).
"""

import django.db.models.deletion
from django.db import migrations, models


def copy_links(apps, schema_editor):
    Annotator = apps.get_model("annotate", "Annotator")
    AIJudgeConfig = apps.get_model("pipeline", "AIJudgeConfig")
    for annotator_id, config_id in Annotator.objects.filter(ai_config__isnull=False).values_list("pk", "ai_config_id"):
        AIJudgeConfig.objects.filter(pk=config_id).update(annotator_id=annotator_id)


def copy_links_back(apps, schema_editor):
    Annotator = apps.get_model("annotate", "Annotator")
    AIJudgeConfig = apps.get_model("pipeline", "AIJudgeConfig")
    for config_id, annotator_id in AIJudgeConfig.objects.filter(annotator__isnull=False).values_list("pk", "annotator_id"):
        Annotator.objects.filter(pk=annotator_id).update(ai_config_id=config_id)


class Migration(migrations.Migration):
    dependencies = [
        ("annotate", "0004_labeling"),
        ("pipeline", "0004_job_moved_to_core"),
    ]

    operations = [
        migrations.AddField(
            model_name="aijudgeconfig",
            name="annotator",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="ai_judge",
                to="annotate.annotator",
            ),
        ),
        migrations.RunPython(copy_links, copy_links_back),
    ]
