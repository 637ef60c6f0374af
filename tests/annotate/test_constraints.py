"""Impossible states are rejected by the database itself, not only by Python code."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotate.models import Annotator, Assignment, Judgment, Pair
from tests.factories import (
    AIJudgeConfigFactory,
    CampaignFactory,
    HumanAnnotatorFactory,
    ImageFactory,
    PairFactory,
    PromptFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _raw_insert(table: str, row: dict) -> None:
    # Bypass the ORM entirely: the constraint must live in the schema.
    columns = ", ".join(row)
    placeholders = ", ".join(["%s"] * len(row))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", list(row.values()))


def test_duplicate_judgment_is_rejected_by_the_database(aspects):
    pair = PairFactory()
    annotator = HumanAnnotatorFactory()
    row = {
        "pair_id": pair.pk,
        "annotator_id": annotator.pk,
        "aspect_id": aspects[0].pk,
        "trial": 1,
        "choice": "A",
        "presented_order": "AB",
        "rationale": "",
        "template_version": "",
        "created_at": timezone.now(),
    }
    _raw_insert(Judgment._meta.db_table, row)
    with pytest.raises(IntegrityError):
        _raw_insert(Judgment._meta.db_table, {**row, "choice": "B"})
    # A second trial of the same aspect is a different judgment and is allowed.
    _raw_insert(Judgment._meta.db_table, {**row, "trial": 2})
    assert Judgment.objects.filter(pair=pair).count() == 2


def test_judgment_choice_must_be_canonical(aspects):
    pair = PairFactory()
    annotator = HumanAnnotatorFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(pair=pair, annotator=annotator, aspect=aspects[0], choice="C")


def test_duplicate_assignment_is_rejected_by_the_database(aspects):
    pair = PairFactory()
    annotator = HumanAnnotatorFactory()
    row = {
        "pair_id": pair.pk,
        "annotator_id": annotator.pk,
        "status": "reserved",
        "swapped": False,
        "expires_at": timezone.now(),
        "created_at": timezone.now(),
        "too_fast": False,
        "skip_reason": "",
    }
    _raw_insert(Assignment._meta.db_table, row)
    with pytest.raises(IntegrityError):
        _raw_insert(Assignment._meta.db_table, row)


def test_pair_images_must_differ_and_be_in_canonical_order(aspects):
    campaign = CampaignFactory()
    prompt = PromptFactory()
    first, second = ImageFactory(prompt=prompt), ImageFactory(prompt=prompt)
    low, high = sorted([first, second], key=lambda image: image.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        Pair.objects.create(campaign=campaign, prompt=prompt, image_a=high, image_b=low)
    with pytest.raises(IntegrityError), transaction.atomic():
        Pair.objects.create(campaign=campaign, prompt=prompt, image_a=low, image_b=low)
    Pair.objects.create(campaign=campaign, prompt=prompt, image_a=low, image_b=high)
    with pytest.raises(IntegrityError), transaction.atomic():
        Pair.objects.create(campaign=campaign, prompt=prompt, image_a=low, image_b=high)


def test_one_image_row_per_sha256():
    image = ImageFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        image.pk = None
        image.save()


def test_annotator_kind_must_match_its_link():
    user = UserFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotator.objects.create(kind=Annotator.Kind.HUMAN, name="x")  # a human without an account
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotator.objects.create(kind=Annotator.Kind.AI, name="y", user=user)
    annotator = Annotator.objects.create(kind=Annotator.Kind.AI, name="judge")
    AIJudgeConfigFactory(annotator=annotator)
    with pytest.raises(IntegrityError), transaction.atomic():
        AIJudgeConfigFactory(annotator=annotator)  # one configuration per AI annotator


def test_crowd_external_id_is_unique_per_platform():
    Annotator.objects.create(
        kind="human", name="a", user=UserFactory(), platform="prolific", external_id="P1"
    )
    Annotator.objects.create(kind="human", name="b", user=UserFactory(), platform="mturk", external_id="P1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotator.objects.create(
            kind="human", name="c", user=UserFactory(), platform="prolific", external_id="P1"
        )
