"""Judgments JSONL import/export: round trip, idempotent re-import, all-or-nothing refusal with line + field."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from annotate.models import Annotator, Judgment
from pipeline.models import AIJudgeConfig
from scoring.services.judgments_io import JudgmentImportError, judgments_import
from tests.factories import (
    AIAnnotatorFactory,
    CampaignFactory,
    HumanAnnotatorFactory,
    JudgmentFactory,
    PairFactory,
)

pytestmark = pytest.mark.django_db


def fields(judgment: Judgment) -> tuple:
    annotator = judgment.annotator
    name = annotator.user.username if annotator.kind == "human" else annotator.ai_judge.name
    return (
        judgment.pair_id, name, annotator.kind, judgment.aspect.key, judgment.trial, judgment.choice,
        judgment.presented_order, judgment.score_a, judgment.score_b, judgment.rationale, judgment.duration_s,
    )  # fmt: skip


@pytest.fixture
def labelled(aspects):
    campaign = CampaignFactory()
    pairs = [PairFactory(campaign=campaign) for _ in range(3)]
    human, ai = HumanAnnotatorFactory(), AIAnnotatorFactory()
    for pair in pairs:
        JudgmentFactory(pair=pair, annotator=human, aspect=aspects[0], choice="B", duration_s=4.5)
        JudgmentFactory(
            pair=pair,
            annotator=ai,
            aspect=aspects[1],
            choice="tie",
            score_a=6,
            score_b=6,
            rationale="both fine",
        )
        JudgmentFactory(pair=pair, annotator=ai, aspect=aspects[1], trial=2, presented_order="BA", choice="A")
    return campaign, pairs, human, ai


def export(*args: str) -> str:
    out = io.StringIO()
    call_command("export_judgments", *args, stdout=out)
    return out.getvalue()


def test_export_then_import_round_trips_and_reimport_changes_nothing(labelled, tmp_path):
    campaign, pairs, human, ai = labelled
    text = export("--campaign", campaign.slug)
    lines = text.splitlines()
    assert len(lines) == 9
    first = json.loads(lines[0])
    assert first["image_a"] == pairs[0].image_a.sha256 and first["annotator_kind"] == "human"
    before = sorted(fields(j) for j in Judgment.objects.all())

    path = tmp_path / "judgments.jsonl"
    path.write_text(text)
    out = io.StringIO()
    call_command("import_judgments", str(path), stdout=out)
    assert "created 0 judgments, 9 already present" in out.getvalue()

    Judgment.objects.all().delete()
    call_command("import_judgments", str(path), stdout=io.StringIO())
    assert sorted(fields(j) for j in Judgment.objects.all()) == before
    assert Annotator.objects.count() == 2  # matched by username / AI judge name, none created
    call_command("import_judgments", str(path), stdout=io.StringIO())
    assert Judgment.objects.count() == 9


def test_import_creates_missing_annotators_and_mirrors_reversed_image_order(labelled):
    campaign, pairs, human, ai = labelled
    pair = pairs[1]
    row = {
        "campaign": campaign.slug,
        "prompt": pair.prompt.text,
        "image_a": pair.image_b.sha256,  # the file names the images the other way round
        "image_b": pair.image_a.sha256,
        "annotator": "new-worker",
        "annotator_kind": "human",
        "aspect": "fidelity",
        "choice": "A",
        "presented_order": "AB",
        "score_a": 7,
        "score_b": 3,
    }
    judge_row = {**row, "annotator": "imported-judge", "annotator_kind": "ai", "choice": "tie"}
    result = judgments_import(lines=[json.dumps(row), json.dumps(judge_row)])
    assert (result.created, result.annotators_created) == (2, 2)
    stored = Judgment.objects.get(annotator__name="new-worker")
    assert (stored.choice, stored.presented_order, stored.score_a, stored.score_b) == ("B", "BA", 3.0, 7.0)
    worker = stored.annotator.user
    assert not worker.has_usable_password() and worker.groups.filter(name="crowdworkers").exists()
    config = AIJudgeConfig.objects.get(name="imported-judge")
    assert (config.provider, config.model, config.base_url, config.options) == (
        "openai",
        "imported-judge",
        "",
        {"imported": True},
    )


def test_a_bad_file_is_refused_with_line_and_field_and_nothing_is_stored(labelled, tmp_path):
    campaign, pairs, human, ai = labelled
    good = json.loads(export().splitlines()[0])
    Judgment.objects.all().delete()
    rows = [
        good,
        {**good, "choice": "left"},
        {**good, "annotator": "someone-new", "trial": 0},
        "{not json",
        {**good, "aspect": "nonsense"},
        {**good, "pair": None, "image_a": "0" * 64},
        {**good, "campaign": "no-such-campaign"},
        {**good, "annotator": "x", "annotator_kind": "robot"},
        good,
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    with pytest.raises(CommandError) as refused:
        call_command("import_judgments", str(path), stdout=io.StringIO())
    message = str(refused.value)
    assert "nothing was imported" in message
    assert "line 2, field 'choice': expected A, B or tie, got 'left'" in message
    assert "line 3, field 'trial': expected an integer >= 1, got 0" in message
    assert "line 4: not valid JSON" in message
    assert "line 5, field 'aspect': campaign" in message and "has no aspect 'nonsense'" in message
    assert f"line 6, field 'image_a': no image with sha256 {'0' * 64}" in message
    assert "line 7, field 'campaign': no campaign with slug 'no-such-campaign'" in message
    assert "line 8, field 'annotator_kind': expected human or ai, got 'robot'" in message
    assert "line 9: the same judgment (pair, annotator, aspect, trial) as line 1" in message
    assert Judgment.objects.count() == 0
    assert not Annotator.objects.filter(user__username="someone-new").exists()


def test_a_conflicting_existing_judgment_is_an_error_not_an_overwrite(labelled):
    line = json.loads(export().splitlines()[0])
    line["choice"] = "A"
    with pytest.raises(
        JudgmentImportError, match=r"line 1, field 'choice': .* as 'B'; refusing to change it to 'A'"
    ):
        judgments_import(lines=[json.dumps(line)])
    assert Judgment.objects.filter(choice="A", aspect__key=line["aspect"]).count() == 0


def test_export_refuses_an_unknown_campaign(labelled):
    with pytest.raises(CommandError, match="Unknown campaign"):
        export("--campaign", "nope")
