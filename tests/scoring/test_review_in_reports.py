"""Review reaches reports and exports: rejected judgments are left out by default, simulated workers can be
left out, a stale report says how many judgments came since, and exports can pseudonymise crowd ids."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotate.models import Annotator, Judgment
from scoring import selectors
from scoring.report_params import ReportParameters
from scoring.services.judgments_io import annotator_pseudonym, judgments_export_lines, judgments_import
from scoring.services.reports import report_compute
from tests.factories import AdminFactory, JudgmentFactory
from tests.scoring.test_report import build_campaign

pytestmark = pytest.mark.django_db


def arrays(campaign, **flags):
    flt = selectors.JudgmentFilter(campaign_ids=(campaign.pk,), **flags)
    return selectors.judgment_arrays(flt=flt)


def test_rejected_judgments_leave_the_report_and_come_back_when_restored(aspects):
    campaign, humans, judges, used = build_campaign(aspects)
    before = arrays(campaign).size
    rejected = list(Judgment.objects.filter(pair__campaign=campaign, annotator=humans[0])[:5])
    Judgment.objects.filter(pk__in=[j.pk for j in rejected]).update(
        rejected_at=timezone.now(), rejection_reason="x"
    )
    assert arrays(campaign).size == before - 5
    assert arrays(campaign, include_rejected=True).size == before
    params = ReportParameters(campaign_ids=(campaign.pk,), n_resamples=20)
    report = report_compute(campaign=campaign, params=params).data
    assert report["totals"]["n_judgments"] == before - 5


def test_simulated_workers_can_be_left_out_and_the_default_key_is_unchanged(aspects):
    campaign, humans, judges, used = build_campaign(aspects)
    Annotator.objects.filter(pk=humans[0].pk).update(is_simulated=True)
    everyone = arrays(campaign).size
    without = arrays(campaign, exclude_simulated=True).size
    assert everyone - without == Judgment.objects.filter(annotator=humans[0]).count() > 0
    default = ReportParameters(campaign_ids=(campaign.pk,))
    assert "exclude_simulated" not in default.as_dict()  # reports cached before the flag keep their key
    filtered = ReportParameters(campaign_ids=(campaign.pk,), exclude_simulated=True)
    assert filtered.key != default.key and ReportParameters.from_dict(filtered.as_dict()) == filtered
    data = report_compute(
        campaign=campaign, params=filtered.__class__(**{**filtered.__dict__, "n_resamples": 20})
    )
    names = {row["annotator"]["name"] for a in data.data["aspects"] for row in a["annotators"]}
    assert humans[0].name not in names


def test_the_report_page_says_how_many_judgments_came_since(client, aspects):
    campaign, humans, judges, used = build_campaign(aspects, n_pairs=6)
    params = ReportParameters(campaign_ids=(campaign.pk,))
    report = report_compute(campaign=campaign, params=params)
    client.force_login(AdminFactory())
    url = reverse("scoring:report", args=[campaign.slug])
    assert "since this report" not in client.get(url).content.decode()
    later = report.created_at + timedelta(seconds=1)
    pair = campaign.pairs.first()
    for aspect in used:
        JudgmentFactory(pair=pair, annotator=humans[3], aspect=aspect, trial=5)
    Judgment.objects.filter(pk__in=Judgment.objects.filter(pair__campaign=campaign).values("pk")[:1]).update(
        rejected_at=later
    )
    Judgment.objects.filter(pair__campaign=campaign).exclude(rejected_at=later).update(
        created_at=report.created_at
    )
    Judgment.objects.filter(trial=5).update(created_at=later)
    body = client.get(url).content.decode()
    assert "2 judgments since this report" in body and "and 1 rejected" in body and "Refresh now" in body
    staleness = selectors.judgments_since(campaign_ids=[campaign.pk], since=report.created_at)
    assert (staleness.new, staleness.rejected) == (2, 1)


def test_exports_leave_rejected_out_and_pseudonymise_people_but_not_ai_judges(aspects):
    campaign, humans, judges, used = build_campaign(aspects, n_pairs=3)
    target = Judgment.objects.filter(pair__campaign=campaign, annotator=humans[0]).first()
    target.rejected_at, target.rejection_reason = timezone.now(), "random clicking"
    target.save()
    total = Judgment.objects.filter(pair__campaign=campaign).count()
    plain = [json.loads(line) for line in judgments_export_lines(campaign_slugs=[campaign.slug])]
    assert len(plain) == total - 1 and not any("rejected" in row for row in plain)
    every = [
        json.loads(line)
        for line in judgments_export_lines(campaign_slugs=[campaign.slug], include_rejected=True)
    ]
    marked = [row for row in every if row.get("rejected")]
    assert len(every) == total and len(marked) == 1 and marked[0]["rejection_reason"] == "random clicking"

    hidden = [
        json.loads(line) for line in judgments_export_lines(campaign_slugs=[campaign.slug], pseudonymise=True)
    ]
    usernames = {h.user.username for h in humans}
    human_names = {row["annotator"] for row in hidden if row["annotator_kind"] == "human"}
    assert human_names and not human_names & usernames
    assert all(name.startswith("worker-") and len(name) == 23 for name in human_names)
    assert annotator_pseudonym(humans[1].user.username) in human_names  # stable across exports
    assert {row["annotator"] for row in hidden if row["annotator_kind"] == "ai"} == {
        j.ai_judge.name for j in judges
    }


def test_a_rejected_line_imports_as_rejected(aspects):
    campaign, humans, judges, used = build_campaign(aspects, n_pairs=2)
    row = json.loads(next(iter(judgments_export_lines(campaign_slugs=[campaign.slug]))))
    row.update(
        annotator="imported-rater", annotator_kind="human", trial=3, rejected=True, rejection_reason="dup"
    )
    result = judgments_import(lines=[json.dumps(row)])
    assert result.created == 1
    stored = Judgment.objects.get(annotator__name="imported-rater")
    assert stored.rejected_at is not None and stored.rejection_reason == "dup"
    row.update(trial=4, rejected="yes")
    with pytest.raises(Exception, match="field 'rejected': expected true or false"):
        judgments_import(lines=[json.dumps(row)])


def test_the_campaign_page_downloads_the_export(client, aspects):
    campaign, humans, judges, used = build_campaign(aspects, n_pairs=2)
    client.force_login(AdminFactory())
    response = client.get(reverse("scoring:export-judgments", args=[campaign.slug]), {"pseudonymise": "1"})
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
    assert "pseudonymised.jsonl" in response["Content-Disposition"]
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == Judgment.objects.filter(pair__campaign=campaign).count()
    assert humans[0].user.username not in "\n".join(lines)
