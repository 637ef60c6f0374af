"""Seed the four VisionPrefer aspects and the crowdworkers group."""

from django.db import migrations

from annotate.aspects import DEFAULT_ASPECTS


def seed(apps, schema_editor):
    Aspect = apps.get_model("annotate", "Aspect")
    Group = apps.get_model("auth", "Group")
    for spec in DEFAULT_ASPECTS:
        Aspect.objects.update_or_create(key=spec["key"], defaults={k: v for k, v in spec.items() if k != "key"})
    Group.objects.get_or_create(name="crowdworkers")


class Migration(migrations.Migration):
    dependencies = [("annotate", "0002_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
