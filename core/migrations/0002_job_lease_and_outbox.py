"""A lease per running job (owner + heartbeat) and an outbox (sent_at, send_error).

Jobs that exist already are marked as sent: their messages were published by the code before this one.
"""

from django.db import migrations, models


def mark_sent(apps, schema_editor):
    Job = apps.get_model("core", "Job")
    Job.objects.filter(sent_at__isnull=True).update(sent_at=models.F("created_at"))


class Migration(migrations.Migration):
    dependencies = [("core", "0001_job_moved_from_pipeline")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="sent_at",
            field=models.DateTimeField(blank=True, help_text="When the broker accepted the message.", null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="send_error",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name="job",
            name="lease_owner",
            field=models.CharField(blank=True, help_text="host:pid/run of the owning run.", max_length=200),
        ),
        migrations.AddField(
            model_name="job",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat"),
        ),
        migrations.RunPython(mark_sent, migrations.RunPython.noop),
    ]
