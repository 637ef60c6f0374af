"""AIJudgeConfig.api_key_env: only variables declared in AI_API_KEY_ENV_NAMES (validation only, no schema change)."""

from django.db import migrations, models

import pipeline.models


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0006_aicall_claims_and_repairs"),
    ]

    operations = [
        migrations.AlterField(
            model_name="aijudgeconfig",
            name="api_key_env",
            field=models.CharField(
                blank=True,
                help_text=(
                    "Name of the environment variable that holds the API key (e.g. OPENAI_API_KEY), never the "
                    "key; one of the variables the operator declared in AI_API_KEY_ENV_NAMES."
                ),
                max_length=100,
                validators=[pipeline.models.validate_api_key_env],
            ),
        ),
    ]
