"""Crowd entry links (Prolific, MTurk): id validation, create or resume, quota, completion."""

from __future__ import annotations

import pytest
from django.http import QueryDict
from django.urls import reverse

from annotate.models import Annotator, Assignment, CampaignWorker
from annotate.services.crowd import CrowdIdInvalid, CrowdPreview, crowd_identity_parse
from tests.annotate.test_assign_engine import campaign_with_pairs

pytestmark = pytest.mark.django_db
PID, STUDY, SESSION = "5f1e2d3c4b5a69788796a5b4", "60aabbccddeeff0011223344", "61aabbccddeeff0011223344"
ALL_LEFT = {f"choice-{k}": "left" for k in ["prompt_following", "aesthetic", "fidelity", "harmlessness"]}


def parse(query: str):
    return crowd_identity_parse(query=QueryDict(query))


def test_valid_ids_are_accepted_and_normalised():
    prolific = parse(f"PROLIFIC_PID={PID.upper()}&STUDY_ID={STUDY}&SESSION_ID={SESSION}")
    assert (prolific.platform, prolific.external_id) == ("prolific", PID)
    assert prolific.params == {"STUDY_ID": STUDY, "SESSION_ID": SESSION}
    mturk = parse(
        "workerId=A1B2C3D4E5F6G7&assignmentId=3AMYWKA6YBLU92KSOGLNT786ESTO6Y&hitId=3PMBY0YE272ZWNIVEJ84Y1JNVO39CE"
    )
    assert (mturk.platform, mturk.external_id) == ("mturk", "A1B2C3D4E5F6G7")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "PROLIFIC_PID=",
        "PROLIFIC_PID=not-an-id",
        f"PROLIFIC_PID={PID}x",
        f"PROLIFIC_PID={PID}&STUDY_ID=<script>",
        "PROLIFIC_PID=5f1e2d3c4b5a69788796a5bz",
        "workerId=a1b2c3d4e5f6g7",
        "workerId=B1B2C3D4E5F6G7",
        "workerId=A12",
        "workerId=A1B2C3D4E5F6G7&assignmentId=short",
        f"workerId=A1B2C3D4E5F6G7&PROLIFIC_PID={PID}",
        "workerId=A1B2C3D4E5F6G7'%20OR%201=1",
    ],
)
def test_malformed_or_forged_ids_are_refused(query):
    with pytest.raises(CrowdIdInvalid):
        parse(query)


def test_mturk_preview_is_not_an_error():
    with pytest.raises(CrowdPreview):
        parse("assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=3PMBY0YE272ZWNIVEJ84Y1JNVO39CE")


def test_bad_link_gets_a_clear_400_page_and_creates_nothing(client, aspects):
    campaign = campaign_with_pairs(2)
    response = client.get(reverse("annotate:crowd-start", args=[campaign.slug]) + "?PROLIFIC_PID=nope")
    assert response.status_code == 400
    body = response.content.decode()
    assert "This link is not valid" in body and "24 hexadecimal characters" in body
    assert not Annotator.objects.exists()


def test_entry_link_creates_then_resumes_the_worker_without_a_password(client, aspects):
    campaign = campaign_with_pairs(5)
    url = (
        reverse("annotate:crowd-start", args=[campaign.slug])
        + f"?PROLIFIC_PID={PID}&STUDY_ID={STUDY}&SESSION_ID={SESSION}"
    )
    response = client.get(url)
    assert response.status_code == 302 and response.url == reverse("annotate:label", args=[campaign.slug])
    annotator = Annotator.objects.get(platform="prolific", external_id=PID)
    assert not annotator.user.has_usable_password() and not annotator.user.is_staff
    assert annotator.user.groups.filter(name="crowdworkers").exists()
    assert CampaignWorker.objects.get(annotator=annotator).crowd_params["STUDY_ID"] == STUDY
    first = client.get(reverse("annotate:label", args=[campaign.slug]))
    assert first.status_code == 200
    client.logout()
    client.get(url)  # same participant, new browser session: same worker, same pair on screen
    again = client.get(reverse("annotate:label", args=[campaign.slug]))
    assert Annotator.objects.filter(platform="prolific").count() == 1
    assert again.context["assignment"].pk == first.context["assignment"].pk


def test_entry_link_switches_accounts_in_a_shared_browser(client, aspects):
    campaign = campaign_with_pairs(5)
    start = reverse("annotate:crowd-start", args=[campaign.slug])
    client.get(start + f"?PROLIFIC_PID={PID}")
    client.get(start + "?workerId=A1B2C3D4E5F6G7")
    assert (
        client.get(reverse("annotate:label", args=[campaign.slug])).context["user"].username
        == "mturk-A1B2C3D4E5F6G7"
    )


def test_closed_campaign_refuses_entry(client, aspects):
    campaign = campaign_with_pairs(2, status="paused")
    response = client.get(reverse("annotate:crowd-start", args=[campaign.slug]) + f"?PROLIFIC_PID={PID}")
    assert response.status_code == 403 and "not open" in response.content.decode()


def test_quota_ends_with_the_completion_code(client, aspects):
    campaign = campaign_with_pairs(10, worker_quota=2, completion_code="C0DE-42")
    client.get(reverse("annotate:crowd-start", args=[campaign.slug]) + f"?PROLIFIC_PID={PID}")
    for _ in range(2):
        page = client.get(reverse("annotate:label", args=[campaign.slug]))
        assignment = page.context["assignment"]
        response = client.post(
            reverse("annotate:label-submit", args=[campaign.slug, assignment.pk]),
            ALL_LEFT,
            HTTP_HX_REQUEST="true",
        )
    assert response.status_code == 204 and response["HX-Redirect"] == reverse(
        "annotate:label-done", args=[campaign.slug]
    )
    annotator = Annotator.objects.get(external_id=PID)
    assert Assignment.objects.filter(annotator=annotator).count() == 2  # no reservation beyond the quota
    done = client.get(reverse("annotate:label-done", args=[campaign.slug]))
    assert "C0DE-42" in done.content.decode() and "all 2 pairs" in done.content.decode()
    assert CampaignWorker.objects.get(annotator=annotator).completed_at is not None
    assert client.get(reverse("annotate:label", args=[campaign.slug])).status_code == 302


def test_completion_url_redirects_to_the_platform(client, aspects):
    target = "https://app.prolific.com/submissions/complete?cc=ABC123"
    campaign = campaign_with_pairs(3, worker_quota=1, completion_url=target)
    client.get(reverse("annotate:crowd-start", args=[campaign.slug]) + "?workerId=A1B2C3D4E5F6G7")
    assignment = client.get(reverse("annotate:label", args=[campaign.slug])).context["assignment"]
    client.post(reverse("annotate:label-submit", args=[campaign.slug, assignment.pk]), ALL_LEFT)
    done = client.get(reverse("annotate:label-done", args=[campaign.slug]))
    assert done.status_code == 302 and done.url == target


def test_no_code_for_a_worker_who_labeled_nothing(client, aspects):
    campaign = campaign_with_pairs(1, humans_per_pair=1, completion_code="FREE-MONEY")
    client.get(reverse("annotate:crowd-start", args=[campaign.slug]) + "?workerId=A1B2C3D4E5F6G7")
    client.get(reverse("annotate:label", args=[campaign.slug]))
    client.logout()
    client.get(reverse("annotate:crowd-start", args=[campaign.slug]) + f"?PROLIFIC_PID={PID}")
    response = client.get(reverse("annotate:label", args=[campaign.slug]), follow=True)
    assert "Nothing to label right now" in response.content.decode()
    assert "FREE-MONEY" not in response.content.decode()
