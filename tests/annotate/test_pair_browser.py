"""The pair browser's filters against a brute-force reference, the pair page, review and a worker's history."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from django.urls import reverse
from django.utils.html import escape

from annotate.models import Judgment, Pair
from annotate.selectors import pair_browser
from tests.factories import (
    AdminFactory,
    AIAnnotatorFactory,
    CampaignFactory,
    HumanAnnotatorFactory,
    JudgmentFactory,
    PairFactory,
)

pytestmark = pytest.mark.django_db
CHOICES = ["A", "B", "tie"]


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory())
    return client


@pytest.fixture
def labelled(aspects):
    """A campaign of 16 pairs with random human and AI judgments on two aspects, some of them rejected."""
    rng = random.Random(14)
    campaign = CampaignFactory(humans_per_pair=3, aspects=aspects[:2])
    humans = [HumanAnnotatorFactory() for _ in range(4)]
    judges = [AIAnnotatorFactory() for _ in range(2)]
    pairs = [PairFactory(campaign=campaign) for _ in range(16)]
    other = PairFactory(campaign=CampaignFactory(aspects=aspects[:2]))  # must never show up
    for pair in [*pairs, other]:
        for aspect in aspects[:2]:
            for human in rng.sample(humans, rng.randint(0, 3)):
                JudgmentFactory(pair=pair, annotator=human, aspect=aspect, choice=rng.choice(CHOICES))
            for judge in judges:
                if rng.random() < 0.8:
                    JudgmentFactory(pair=pair, annotator=judge, aspect=aspect, choice=rng.choice(CHOICES))
                    if rng.random() < 0.5:  # a second trial never counts for disagreement
                        JudgmentFactory(pair=pair, annotator=judge, aspect=aspect, trial=2, choice="tie")
    rejected = list(Judgment.objects.filter(pair__campaign=campaign).order_by("?")[:15])
    Judgment.objects.filter(pk__in=[j.pk for j in rejected]).update(
        rejected_at="2026-01-01T00:00:00Z", rejection_reason="test"
    )
    Pair.objects.filter(pk__in=[p.pk for p in pairs[:5]]).update(slots_submitted=3)
    Pair.objects.filter(pk__in=[p.pk for p in pairs[5:9]]).update(slots_submitted=1, is_gold=True)
    return campaign, aspects[:2]


def reference(campaign, kind: str, aspect=None) -> set[int]:
    """Brute force in Python over every judgment row."""
    votes: dict[tuple[int, int], dict[str, list]] = {}
    for j in Judgment.objects.filter(pair__campaign=campaign, rejected_at__isnull=True).select_related(
        "annotator"
    ):
        if aspect is not None and j.aspect_id != aspect.pk:
            continue
        entry = votes.setdefault((j.pair_id, j.aspect_id), {"human": [], "ai": []})
        if j.annotator.kind == "human":
            entry["human"].append(j.choice)
        elif j.trial == 1:
            entry["ai"].append(j.choice)
    found = set()
    for (pair_id, _), entry in votes.items():
        if kind == "humans" and len(set(entry["human"])) > 1:
            found.add(pair_id)
        if kind == "ai_vs_ai" and len(set(entry["ai"])) > 1:
            found.add(pair_id)
        if kind == "ai_vs_humans" and entry["human"]:
            (top, n), *rest = Counter(entry["human"]).most_common() + [(None, 0)]
            if rest[0][1] < n and any(choice != top for choice in entry["ai"]):
                found.add(pair_id)
    return found


@pytest.mark.parametrize("kind", ["humans", "ai_vs_humans", "ai_vs_ai"])
def test_disagreement_filters_match_a_brute_force_reference(labelled, kind):
    campaign, aspects = labelled
    for aspect in (None, *aspects):
        got = set(
            pair_browser(campaign=campaign, disagreement=kind, aspect=aspect).values_list("pk", flat=True)
        )
        expected = reference(campaign, kind, aspect)
        assert got == expected, (kind, aspect)
    assert reference(campaign, kind)  # the fixture has each kind of disagreement


def test_status_gold_and_sort_filters(labelled):
    campaign, _ = labelled
    ids = lambda **kw: list(pair_browser(campaign=campaign, **kw).values_list("pk", flat=True))  # noqa: E731
    everything = ids()
    assert everything == sorted(everything) and len(everything) == 16
    assert ids(sort="-id") == everything[::-1]
    assert ids(status="complete") == everything[:5]
    assert ids(status="in_progress") == everything[5:9]
    assert ids(status="unlabelled") == everything[9:]
    assert ids(gold="gold") == everything[5:9] and len(ids(gold="regular")) == 12
    assert ids(sort="-humans")[:5] == everything[:5]
    with pytest.raises(ValueError, match="Unknown disagreement"):
        ids(disagreement="nope")


def test_the_browser_page_filters_and_pages(admin_client, labelled):
    campaign, _ = labelled
    url = reverse("annotate:pair-list", args=[campaign.slug])
    page = admin_client.get(url, {"disagreement": "humans"})
    expected = reference(campaign, "humans")
    assert page.status_code == 200 and f"{len(expected)} pair" in page.content.decode()
    shown = {pair.pk for pair, _ in page.context["rows"]}
    assert shown == expected if len(expected) <= 24 else shown <= expected
    partial = admin_client.get(url, {"status": "complete"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and "5 pairs" in partial
    assert admin_client.get(url, {"status": "bogus"}).status_code == 400


def test_the_pair_page_shows_every_judgment_with_its_facts(admin_client, aspects):
    campaign = CampaignFactory(aspects=aspects[:1])
    pair = PairFactory(campaign=campaign)
    human, judge = HumanAnnotatorFactory(name="ana"), AIAnnotatorFactory(name="gpt-judge")
    JudgmentFactory(
        pair=pair, annotator=human, aspect=aspects[0], choice="B", presented_order="BA", score_a=2, score_b=5,
        rationale="the right one has three circles", duration_s=7.5,
    )  # fmt: skip
    JudgmentFactory(
        pair=pair, annotator=judge, aspect=aspects[0], choice="A", trial=2, rationale="A counts right"
    )
    body = admin_client.get(reverse("annotate:pair-detail", args=[campaign.slug, pair.pk])).content.decode()
    for text in ("ana", "gpt-judge", "the right one has three circles", "A counts right", "trial 2", "7.5 s"):
        assert text in body, text
    assert "image B shown left" in body and escape(pair.image_a.file.url) in body and pair.prompt.text in body
    # B was shown on the left, and B won: "as seen" says left.
    assert '<td class="muted">left</td>' in body


def test_rejecting_a_judgment_keeps_it_marked_and_can_be_undone(admin_client, aspects, client):
    judgment = JudgmentFactory()
    url = reverse("annotate:judgment-review", args=[judgment.pk])
    refused = admin_client.post(url, {"reason": "  "}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 422 and "Say why" in refused.content.decode()
    response = admin_client.post(url, {"reason": "clicked without looking"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "rejected" in response.content.decode()
    judgment.refresh_from_db()
    assert judgment.rejected_at is not None and judgment.rejection_reason == "clicked without looking"
    assert judgment.rejected_by is not None
    admin_client.post(url, {"undo": "1"}, HTTP_HX_REQUEST="true")
    judgment.refresh_from_db()
    assert judgment.rejected_at is None and judgment.rejection_reason == ""

    from annotate.services.campaigns import crowdworker_create

    client.force_login(crowdworker_create(username="nosy", password="a-long-password-1"))
    assert client.post(url, {"reason": "mine now"}).status_code == 403


def test_a_workers_history_lists_their_pairs_answers_and_rejections(admin_client, aspects):
    from tests.annotate.test_assign_engine import campaign_with_pairs
    from tests.annotate.test_quality_control import label

    campaign = campaign_with_pairs(4)
    worker = HumanAnnotatorFactory(name="careful-carla")
    first = label(campaign, worker, seconds=9.4)
    Judgment.objects.filter(assignment=first).update(rejected_at="2026-01-01T00:00:00Z", rejection_reason="x")
    body = admin_client.get(reverse("annotate:worker-detail", args=[worker.pk]), {"campaign": campaign.slug})
    text = body.content.decode()
    assert body.status_code == 200 and "careful-carla" in text and "9.4" in text
    assert text.count("chip is-rejected") == 4 and "Rejected judgments</dt><dd>4" in text
