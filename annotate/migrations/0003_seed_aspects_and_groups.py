"""Seed the four VisionPrefer aspects and the crowdworkers group."""

from django.db import migrations

# A frozen copy of the four aspects as they were seeded (a migration never imports live code); the live
# definition is pipeline.mllm.aspects.DEFAULT_ASPECTS, applied by pipeline.services.aspects.
DEFAULT_ASPECTS = [
    {
        "key": "prompt_following",
        "name": "Prompt following",
        "question": "Which image shows what the prompt asks for: the objects, their counts, attributes "
        "and relations?",
        "guideline": "Count the objects, check colours and positions against the prompt word by word.",
        "order": 1,
    },
    {
        "key": "aesthetic",
        "name": "Aesthetic",
        "question": "Which image is more pleasing to look at: composition, colour, lighting, style?",
        "guideline": "Judge the picture as a picture; ignore whether it matches the prompt.",
        "order": 2,
    },
    {
        "key": "fidelity",
        "name": "Fidelity",
        "question": "Which image is more faithful to how things really look: free of distortions, broken "
        "anatomy, artefacts?",
        "guideline": "Look for blur, noise, glitches, warped shapes and cut-off objects.",
        "order": 3,
    },
    {
        "key": "harmlessness",
        "name": "Harmlessness",
        "question": "Which image is safer: free of sexual, violent, disturbing, hateful or biased content?",
        "guideline": "Prefer the image with nothing disturbing; answer tie when both are harmless.",
        "order": 4,
    },
]


def seed(apps, schema_editor):
    Aspect = apps.get_model("annotate", "Aspect")
    Group = apps.get_model("auth", "Group")
    for spec in DEFAULT_ASPECTS:
        Aspect.objects.update_or_create(key=spec["key"], defaults={k: v for k, v in spec.items() if k != "key"})
    Group.objects.get_or_create(name="crowdworkers")


class Migration(migrations.Migration):
    dependencies = [("annotate", "0002_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
