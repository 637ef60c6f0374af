"""Campaign settings in the app: create and edit pages, custom aspects, hard errors, warnings, safe guidelines."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotate.markdown import markdown_to_safe_html
from annotate.models import Aspect, Campaign
from annotate.selectors import campaign_warnings
from tests.annotate.test_assign_engine import campaign_with_pairs
from tests.factories import AdminFactory, CampaignFactory, PairFactory

pytestmark = pytest.mark.django_db
DEFAULTS = ["prompt_following", "aesthetic", "fidelity", "harmlessness"]


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory())
    return client


def form_data(**overrides):
    """Every field of the campaign form as a browser posts it (checkboxes present only when ticked)."""
    data = {
        "name": "Team study",
        "status": "draft",
        "access": "open",
        "guidelines": "Look **closely**.",
        "humans_per_pair": "3",
        "allow_tie": "on",
        "score_min": "1",
        "score_max": "10",
        "reservation_minutes": "10",
        "worker_quota": "",
        "completion_code": "",
        "completion_url": "",
        "gold_rate": "0",
        "min_seconds_per_pair": "3",
        "flag_too_fast_share": "0.3",
        "min_submissions_for_flag": "5",
        "min_gold_for_status": "5",
        "flag_gold_accuracy_below": "0.6",
        "block_gold_accuracy_below": "0.4",
        "aspects": [str(a.pk) for a in Aspect.objects.filter(key__in=DEFAULTS)],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_an_admin_creates_a_campaign_with_a_custom_aspect_from_the_page(admin_client, aspects):
    page = admin_client.get(reverse("annotate:campaign-create")).content.decode()
    assert 'name="new_aspect_question"' in page and "Prompt following" in page
    response = admin_client.post(
        reverse("annotate:campaign-create"),
        form_data(
            aspects=[str(aspects[0].pk)],
            new_aspect_name="Text legibility",
            new_aspect_question="In which image is the written text easier to read?",
            new_aspect_rubric="Every letter is crisp\n\nSome letters are garbled\nNo readable text",
            human_scores="on",
            score_min="1",
            score_max="5",
            worker_quota="20",
            min_submissions_for_flag="4",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get(name="Team study")
    assert response.url == reverse("annotate:campaign-detail", args=[campaign.slug])
    assert campaign.slug == "team-study" and campaign.human_scores and campaign.score_max == 5
    custom = Aspect.objects.get(key="text_legibility")
    assert custom.question.startswith("In which image") and custom.guideline.splitlines() == [
        "Every letter is crisp",
        "Some letters are garbled",
        "No readable text",
    ]
    assert set(campaign.aspects.values_list("key", flat=True)) == {"prompt_following", "text_legibility"}
    # The AI judges get the custom rubric as its levels.
    from pipeline.services.judges import campaign_mllm_aspects

    rubric = {a.key: a.rubric for a in campaign_mllm_aspects(campaign)}
    assert rubric["text_legibility"] == (
        "Every letter is crisp",
        "Some letters are garbled",
        "No readable text",
    )


def test_edit_settings_is_the_apps_page_and_saves_every_field(admin_client, aspects):
    campaign = CampaignFactory(name="Editable", status="draft")
    detail = admin_client.get(reverse("annotate:campaign-detail", args=[campaign.slug])).content.decode()
    assert reverse("annotate:campaign-edit", args=[campaign.slug]) in detail
    assert "/admin/annotate/campaign/" not in detail
    data = form_data(
        name="Editable",
        status="paused",
        access="invite",
        humans_per_pair="2",
        allow_tie=None,
        rationale_required="on",
        reservation_minutes="7",
        completion_code="ABC-123",
        flag_gold_accuracy_below="0.7",
        block_gold_accuracy_below="0.5",
        min_submissions_for_flag="3",
        aspects=[str(a.pk) for a in aspects[:2]],
    )
    url = reverse("annotate:campaign-edit", args=[campaign.slug])
    warned = admin_client.post(url, data)  # invite only without members: every pair needs 2 people
    assert "Invite only with 0 members" in warned.content.decode()
    response = admin_client.post(url, {**data, "confirm": "1"})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.access, campaign.humans_per_pair, campaign.allow_tie) == (
        "paused",
        "invite",
        2,
        False,
    )
    assert campaign.rationale_required and campaign.reservation_minutes == 7
    assert campaign.completion_code == "ABC-123" and campaign.min_submissions_for_flag == 3
    assert campaign.aspects.count() == 2


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"block_gold_accuracy_below": "0.8"}, "block_gold_accuracy_below", "worse accuracy than flagging"),
        ({"score_min": "5", "score_max": "5"}, "score_max", "must go up"),
        ({"human_scores": "on", "score_min": "1", "score_max": "20"}, "score_max", "digit keys"),
        ({"human_scores": "on", "score_min": "0", "score_max": "10"}, "score_max", "digit keys"),
        ({"aspects": []}, "aspects", "at least one aspect"),
        ({"gold_rate": "1.5"}, "gold_rate", "between 0 and 1"),
        ({"reservation_minutes": "0"}, "reservation_minutes", "At least one minute"),
        ({"new_aspect_name": "Fidelity", "new_aspect_question": "Q?"}, "new_aspect_name", "exists"),
        ({"new_aspect_name": "Composition"}, "new_aspect_question", "question"),
    ],
)
def test_settings_that_are_wrong_are_refused_with_the_field_named(
    admin_client, aspects, overrides, field, words
):
    response = admin_client.post(reverse("annotate:campaign-create"), form_data(**overrides))
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert field in errors and words.lower() in " ".join(errors[field]).lower(), errors
    assert not Campaign.objects.filter(name="Team study").exists()


def test_a_setting_that_cannot_work_is_saved_only_after_the_warning_was_seen(admin_client, aspects):
    data = form_data(worker_quota="3", min_submissions_for_flag="10")
    first = admin_client.post(reverse("annotate:campaign-create"), data)
    assert first.status_code == 200 and not Campaign.objects.filter(name="Team study").exists()
    body = first.content.decode()
    assert "nobody will ever be flagged for speed" in body and "Save anyway" in body
    second = admin_client.post(reverse("annotate:campaign-create"), {**data, "confirm": "1"})
    assert second.status_code == 302 and Campaign.objects.filter(name="Team study").exists()


def test_the_live_check_returns_warnings_without_saving(admin_client, aspects):
    response = admin_client.post(
        reverse("annotate:campaign-check"), form_data(worker_quota="3", min_submissions_for_flag="10")
    )
    assert response.status_code == 200 and "<html" not in response.content.decode()
    assert "nobody will ever be flagged for speed" in response.content.decode()
    assert not Campaign.objects.exists()


def test_warnings_name_each_setting_that_cannot_work(aspects):
    campaign = campaign_with_pairs(4, gold_rate=0.2, worker_quota=10, min_gold_for_status=5)
    warnings = " ".join(campaign_warnings(campaign=campaign))
    assert "no gold pairs" in warnings
    assert "quota is 10 pairs but the campaign has only 4" in warnings
    PairFactory(campaign=campaign, is_gold=True, gold_answers={"fidelity": "tie"})
    campaign.allow_tie = False
    warnings = " ".join(campaign_warnings(campaign=campaign))
    assert "no gold pairs" not in warnings
    assert "has only 1, and nobody sees a gold pair twice" in warnings
    assert "1 gold pair expect a tie" in warnings
    campaign.flag_too_fast_share = 1.0
    campaign.completion_url, campaign.completion_code = "https://example.org/done", "X"
    warnings = " ".join(campaign_warnings(campaign=campaign))
    assert "no share exceeds 100%" in warnings and "never see the code" in warnings
    campaign.access = Campaign.Access.INVITE
    assert any("Invite only with 0 members" in w for w in campaign_warnings(campaign=campaign))


def test_a_sound_campaign_has_no_warnings(aspects):
    campaign = campaign_with_pairs(30, n_gold=6, gold_rate=0.25, worker_quota=20, min_gold_for_status=4)
    assert campaign_warnings(campaign=campaign) == []


def test_expected_gold_pairs_within_the_quota_are_checked_against_the_gold_minimum(aspects):
    campaign = campaign_with_pairs(30, n_gold=10, gold_rate=0.1, worker_quota=20, min_gold_for_status=5)
    assert any("about 2.0 gold pairs" in w for w in campaign_warnings(campaign=campaign))
    campaign.gold_rate = 0.3
    assert campaign_warnings(campaign=campaign) == []


def test_guidelines_are_markdown_rendered_without_scripts_or_unsafe_links(client, aspects):
    html = markdown_to_safe_html(
        "## Rules\n\n- **count** the shapes\n- [help](https://example.org)\n\n"
        "<script>alert(1)</script><img src=x onerror=alert(2)> [bad](javascript:alert(3))"
    )
    assert "<h2>Rules</h2>" in html and "<strong>count</strong>" in html
    assert 'href="https://example.org"' in html and 'rel="noopener noreferrer nofollow"' in html
    assert (
        "<script" not in html and "onerror" not in html and "javascript:" not in html and "<img" not in html
    )
    from annotate.services.campaigns import crowdworker_create

    campaign = campaign_with_pairs(2, guidelines="# Be fair\n\n<script>steal()</script>*really*")
    client.force_login(crowdworker_create(username="reader", password="a-long-password-1"))
    page = client.get(reverse("annotate:label", args=[campaign.slug])).content.decode()
    assert "<h1>Be fair</h1>" in page and "<em>really</em>" in page and "steal()" not in page


def test_dropping_an_aspect_with_judgments_needs_a_confirmation(admin_client, aspects):
    from tests.factories import JudgmentFactory

    campaign = CampaignFactory(name="Team study", status="draft", gold_rate=0)
    JudgmentFactory(pair=PairFactory(campaign=campaign), aspect=aspects[3])
    data = form_data(aspects=[str(a.pk) for a in aspects[:3]])
    url = reverse("annotate:campaign-edit", args=[campaign.slug])
    warned = admin_client.post(url, data).content.decode()
    assert "Dropping Harmlessness hides its 1 judgment" in warned
    assert campaign.aspects.count() == 4
    assert admin_client.post(url, {**data, "confirm": "1"}).status_code == 302
    assert campaign.aspects.count() == 3


def test_labeled_pairs_for_the_completion_code_are_a_setting_checked_against_the_quota(admin_client, aspects):
    campaign = CampaignFactory(worker_quota=10, min_labeled_pairs=10)
    assert not any("labeled pairs" in w for w in campaign_warnings(campaign=campaign))
    campaign.min_labeled_pairs = 12
    assert any(
        "needs 12 labeled pairs but the quota stops a worker at 10" in w
        for w in campaign_warnings(campaign=campaign)
    )
    page = admin_client.get(reverse("annotate:campaign-create")).content.decode()
    assert 'name="min_labeled_pairs"' in page
    response = admin_client.post(
        reverse("annotate:campaign-create"),
        form_data(name="Quota study", worker_quota="8", min_labeled_pairs="5"),
    )
    assert response.status_code == 302
    assert Campaign.objects.get(name="Quota study").min_labeled_pairs == 5
