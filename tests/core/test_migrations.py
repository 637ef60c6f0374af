"""A database made with the schema before the job core existed migrates forward without losing a row.

The test migrates the real test database back to that schema, writes jobs, an AI judge with its
annotator, calls, judgments and a report with the historical models, migrates forward to the latest
schema, and reads everything back through today's models.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from annotate.models import Annotator, Judgment
from core.models import Job
from pipeline.models import AICall, AIJudgeConfig
from scoring.models import Report

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BEFORE_THE_JOB_CORE = [
    ("annotate", "0004_labeling"),
    ("pipeline", "0003_judge_key_variable_name"),
    ("scoring", "0002_report"),
    ("core", None),  # the app did not exist yet
]


def _migrate(targets: list[tuple[str, str | None]]):  # noqa: ANN202 - returns the historical app registry
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


@pytest.fixture
def old_schema():
    """The historical app registry at the old schema; the database is migrated back to the latest after."""
    try:
        yield _migrate(BEFORE_THE_JOB_CORE)
    finally:  # never leave the shared test database on the old schema, whatever the test did
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_jobs_judgments_calls_and_judge_links_survive_the_move_to_core(old_schema):
    old = old_schema
    user = old.get_model("auth", "User").objects.create(username="admin")
    campaign = old.get_model("annotate", "Campaign").objects.create(name="c", slug="c")
    prompt = old.get_model("annotate", "Prompt").objects.create(text="a red cube", text_sha256="0" * 64)
    generator = old.get_model("annotate", "Generator").objects.create(name="g", kind="demo")
    image_model = old.get_model("annotate", "Image")
    images = [
        image_model.objects.create(
            prompt=prompt,
            generator=generator,
            file=f"images/{n}.png",
            sha256=str(n) * 64,
            format="PNG",
            width=8,
            height=8,
            size_bytes=10,
        )
        for n in (1, 2)
    ]
    pair = old.get_model("annotate", "Pair").objects.create(
        campaign=campaign, prompt=prompt, image_a=images[0], image_b=images[1]
    )
    # Transactional tests start from empty tables: the seeded aspects are gone too.
    aspect, _ = old.get_model("annotate", "Aspect").objects.get_or_create(
        key="fidelity", defaults={"name": "Fidelity", "question": "Which is faithful?"}
    )
    judge = old.get_model("pipeline", "AIJudgeConfig").objects.create(
        name="judge", provider="simulated", model="sim"
    )
    ai_annotator = old.get_model("annotate", "Annotator").objects.create(
        kind="ai", name="judge", ai_config=judge
    )
    job_model = old.get_model("pipeline", "Job")
    generation = job_model.objects.create(
        kind="generate",
        status="succeeded",
        campaign=campaign,
        created_by=user,
        params={"campaign_id": campaign.pk, "generator_ids": [generator.pk], "then": [{"kind": "annotate"}]},
        progress_done=2,
        progress_total=2,
    )
    annotation = job_model.objects.create(
        kind="annotate",
        status="running",
        campaign=campaign,
        params={"campaign_id": campaign.pk, "judge_config_id": judge.pk, "batch": {"batch_id": "b-1"}},
    )
    call = old.get_model("pipeline", "AICall").objects.create(
        job=annotation, judge=judge, pair=pair, prompt=prompt, status="succeeded", prompt_tokens=321
    )
    old.get_model("annotate", "Judgment").objects.create(
        pair=pair, annotator=ai_annotator, aspect=aspect, choice="B", ai_call=call
    )
    old.get_model("scoring", "Report").objects.create(
        campaign=campaign, params_hash="h", schema_version=1, data={}, job=annotation
    )

    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    moved = Job.objects.get(pk=generation.pk)
    assert (moved.kind, moved.status, moved.campaign_id, moved.created_by_id) == (
        "generate",
        "succeeded",
        campaign.pk,
        user.pk,
    )
    assert moved.params == {"campaign_id": campaign.pk, "generator_ids": [generator.pk]}
    assert moved.follow_ups == [{"kind": "annotate"}]  # "then" left params for its own field
    resumed = Job.objects.get(pk=annotation.pk)
    assert resumed.state == {"batch": {"batch_id": "b-1"}} and "batch" not in resumed.params
    assert AICall.objects.get(pk=call.pk).job == resumed
    assert AICall.objects.get(pk=call.pk).prompt_tokens == 321
    judgment = Judgment.objects.get(pair_id=pair.pk)
    assert judgment.choice == "B" and judgment.ai_call_id == call.pk
    assert Report.objects.get(campaign_id=campaign.pk).job == resumed
    # The judge-annotator link now lives on the judge, pointing at the same annotator row.
    assert AIJudgeConfig.objects.get(pk=judge.pk).annotator == Annotator.objects.get(pk=ai_annotator.pk)
    assert Annotator.objects.get(pk=ai_annotator.pk).ai_judge.pk == judge.pk
