"""AICall claims (the run sending a call, and since when) and the parser's repairs of the answer used."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0005_judge_annotator_link")]

    operations = [
        migrations.AddField(
            model_name="aicall",
            name="claimed_by",
            field=models.CharField(blank=True, max_length=220),
        ),
        migrations.AddField(
            model_name="aicall",
            name="claimed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="aicall",
            name="repairs",
            field=models.JSONField(
                blank=True, default=list, help_text="What the parser repaired in the answer used (json_in_fence, ...)."
            ),
        ),
        migrations.AlterField(
            model_name="aicall",
            name="attempt_log",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Every attempt of every run: outcome, HTTP status, latency, tokens, raw text (bounded).",
            ),
        ),
    ]
