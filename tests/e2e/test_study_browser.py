"""Running a study from the app's pages, in headless Chromium: campaign and AI judge made from the pages,
the judge's Test button against the loopback server, the pair browser's disagreement filter, rejecting a
judgment and seeing the report change, an invite-only campaign hidden from a non-member, and labeling at
phone width (390 px) with per-image scores typed as digits and an undo."""

from __future__ import annotations

import re

import pytest

from annotate.models import Aspect, Assignment, Campaign, Judgment
from annotate.services.campaigns import crowdworker_create
from annotate.services.members import campaign_member_add
from pipeline.mllm.loopback_server import LoopbackServer
from pipeline.models import AIJudgeConfig
from scoring.models import Report
from scoring.report_params import ReportParameters
from scoring.services.reports import report_compute
from tests.annotate.test_assign_engine import campaign_with_pairs
from tests.annotate.test_pair_browser import reference
from tests.e2e.test_label_keyboard import ARTIFACTS, PID, on_screen
from tests.factories import (
    AdminFactory,
    AIAnnotatorFactory,
    CampaignFactory,
    HumanAnnotatorFactory,
    JudgmentFactory,
    PairFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests-1"
KEY_ENV = "VP_TEST_BROWSER_KEY"


def sign_in(browser, live_server, username: str, *, width: int = 1400):
    page = browser.new_page(viewport={"width": width, "height": 900 if width > 600 else 844})
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    return page


def test_an_admin_creates_a_campaign_and_an_ai_judge_from_the_pages_only(
    live_server, browser, aspects, settings, monkeypatch
):
    settings.AI_API_KEY_ENV_NAMES = ["OPENAI_API_KEY", KEY_ENV]
    admin = AdminFactory()
    page = sign_in(browser, live_server, admin.username)
    page.click("text=New campaign")
    page.fill("#id_name", "Browser study")
    page.select_option("#id_status", "active")
    page.fill("#id_guidelines", "Count the **shapes** first.")
    page.uncheck("#id_allow_tie")
    page.check("#id_human_scores")
    page.fill("#id_score_max", "5")
    page.fill("#id_worker_quota", "12")
    page.fill("#id_min_submissions_for_flag", "4")
    page.fill("#id_gold_rate", "0")
    page.uncheck(f"input[name=aspects][value='{Aspect.objects.get(key='harmlessness').pk}']")
    page.click("text=Add a custom aspect")
    page.fill("#id_new_aspect_name", "Text legibility")
    page.fill("#id_new_aspect_question", "Where is the written text easier to read?")
    page.click("button:has-text('Create campaign')")
    page.wait_for_selector("h1:has-text('Browser study')")
    campaign = Campaign.objects.get(name="Browser study")
    assert (campaign.status, campaign.allow_tie, campaign.human_scores, campaign.score_max) == (
        "active",
        False,
        True,
        5,
    )
    assert campaign.worker_quota == 12 and campaign.min_submissions_for_flag == 4
    assert set(campaign.aspects.values_list("key", flat=True)) == {
        "prompt_following", "aesthetic", "fidelity", "text_legibility"
    }  # fmt: skip
    page.click("text=Edit settings")
    page.wait_for_selector("h1:has-text('Settings: Browser study')")

    page.click("nav >> text=AI judges")
    page.click("text=New AI judge")
    page.fill("#id_name", "Browser judge")
    page.select_option("#id_provider", "openai")
    page.fill("#id_model", "gpt-4o-mini")
    page.fill("#id_base_url", "https://llm.example.org/v1")
    page.select_option("#id_api_key_env", KEY_ENV)
    page.select_option("#id_mode", "pair")
    page.select_option("#id_template_version", "vp-pair-v1")
    page.fill("#id_concurrency", "12")
    page.fill("#id_requests_per_minute", "300")
    page.fill("#id_price_per_1k_prompt_tokens", "0.00015")
    page.fill("#id_price_per_1k_completion_tokens", "0.0006")
    page.click("button:has-text('Create judge')")
    page.wait_for_selector("h1:has-text('AI judge: Browser judge')")
    judge = AIJudgeConfig.objects.get(name="Browser judge")
    assert (judge.provider, judge.model, judge.api_key_env, judge.concurrency, judge.requests_per_minute) == (
        "openai", "gpt-4o-mini", KEY_ENV, 12, 300
    )  # fmt: skip
    page.click("text=Duplicate")
    page.click("button:has-text('Create judge')")
    page.wait_for_selector("h1:has-text('Browser judge (copy)')")
    assert AIJudgeConfig.objects.get(name="Browser judge (copy)").requests_per_minute == 300


def test_the_judge_test_button_calls_the_loopback_server(
    live_server, browser, served_media, aspects, settings, monkeypatch
):
    settings.AI_API_KEY_ENV_NAMES = [KEY_ENV]
    monkeypatch.setenv(KEY_ENV, "sk-test-not-a-real-key")
    campaign = CampaignFactory(name="Judge bench")
    pair = PairFactory(campaign=campaign)
    with LoopbackServer() as server:
        judge = AIJudgeConfig.objects.create(
            name="loopback",
            provider="openai",
            model="loopback-judge",
            base_url=server.base_url,
            api_key_env=KEY_ENV,
        )
        page = sign_in(browser, live_server, AdminFactory().username)
        page.goto(f"{live_server.url}/ai/judges/{judge.pk}/")
        page.select_option("#id_campaign", str(campaign.pk))
        page.click("#test-button")
        page.wait_for_selector("#test-judgments", timeout=30_000)
        text = page.inner_text("#test-result")
        assert "answered" in text and "prompt_following" in text
        assert len(server.chat_requests) == 1
        assert pair.prompt.text in page.text_content("#test-prompt")  # under "Rendered prompt"
        assert '"aspects"' in page.text_content("#test-raw")  # under "Raw answer"


def test_the_pair_browsers_disagreement_filter(live_server, browser, served_media, aspects):
    campaign = CampaignFactory(name="Split votes", aspects=aspects[:1])
    humans = [HumanAnnotatorFactory() for _ in range(3)]
    judge = AIAnnotatorFactory()
    pairs = [PairFactory(campaign=campaign) for _ in range(6)]
    for k, pair in enumerate(pairs):
        votes = ["A", "A", "B"] if k % 2 else ["A", "A", "A"]
        for human, vote in zip(humans, votes, strict=True):
            JudgmentFactory(pair=pair, annotator=human, aspect=aspects[0], choice=vote)
        JudgmentFactory(pair=pair, annotator=judge, aspect=aspects[0], choice="B" if k < 2 else "A")
    page = sign_in(browser, live_server, AdminFactory().username)
    page.goto(f"{live_server.url}/campaigns/{campaign.slug}/pairs/")
    assert page.locator(".pair-card").count() == 6
    page.select_option("select[name=disagreement]", "humans")
    page.wait_for_function("() => document.querySelectorAll('.pair-card').length === 3")
    shown = {
        int(re.search(r"pair-(\d+)", i).group(1))
        for i in page.eval_on_selector_all(".pair-card", "els => els.map(e => e.id)")
    }
    assert shown == reference(campaign, "humans") == {p.pk for p in pairs[1::2]}
    assert "disagreement=humans" in page.url  # the filter is in the address, for sharing
    page.select_option("select[name=disagreement]", "ai_vs_humans")
    page.wait_for_function("() => document.querySelectorAll('.pair-card').length === 2")
    assert "an AI judge differs from the human majority" in page.inner_text("#pair-results")


def test_rejecting_a_judgment_changes_the_report(live_server, browser, served_media, aspects, worker):
    campaign = CampaignFactory(name="Review me", aspects=aspects[:1])
    humans = [HumanAnnotatorFactory() for _ in range(3)]
    pairs = [PairFactory(campaign=campaign) for _ in range(4)]
    for pair in pairs:
        for human in humans:
            JudgmentFactory(
                pair=pair, annotator=human, aspect=aspects[0], choice="A", rationale="looks right"
            )
    report_compute(campaign=campaign, params=ReportParameters(campaign_ids=(campaign.pk,)))
    target = Judgment.objects.filter(pair=pairs[0], annotator=humans[0]).get()

    page = sign_in(browser, live_server, AdminFactory().username)
    page.goto(f"{live_server.url}/campaigns/{campaign.slug}/report/")
    assert "on 12 judgments" in page.inner_text(".meta-line")
    assert page.locator("#stale-notice").count() == 0
    page.goto(f"{live_server.url}/campaigns/{campaign.slug}/pairs/{pairs[0].pk}/")
    row = f"#judgment-{target.pk}"
    page.fill(f"{row} input[name=reason]", "answered before the images loaded")
    page.click(f"{row} button:has-text('Reject')")
    page.wait_for_selector(f"{row}.is-rejected")
    assert "answered before the images loaded" in page.inner_text(row)
    target.refresh_from_db()
    assert target.rejected_at is not None  # kept and marked, not deleted

    page.goto(f"{live_server.url}/campaigns/{campaign.slug}/report/")
    assert "0 judgments since this report and 1 rejected" in page.inner_text("#stale-notice")
    page.click("#stale-notice button")
    page.wait_for_function(
        "() => document.querySelector('.meta-line') && document.querySelector('.meta-line').textContent.includes('on 11 judgments')",
        timeout=60_000,
    )
    assert page.locator("#stale-notice").count() == 0
    assert Report.objects.filter(campaign=campaign).order_by("-created_at").first().n_judgments == 11


def test_an_invite_only_campaign_is_hidden_from_a_non_member(live_server, browser, served_media, aspects):
    closed = campaign_with_pairs(3, name="Lab team only", access="invite")
    campaign_with_pairs(3, name="Everyone welcome")
    member = crowdworker_create(username="member", password=PASSWORD)
    crowdworker_create(username="stranger", password=PASSWORD)
    campaign_member_add(campaign=closed, user=member)

    page = sign_in(browser, live_server, "stranger")
    home = page.inner_text("main")
    assert "Everyone welcome" in home and "Lab team only" not in home
    response = page.goto(f"{live_server.url}/c/{closed.slug}/label/")
    assert response.status == 403 and "invited members only" in page.inner_text("main")
    assert not Assignment.objects.filter(campaign=closed).exists()

    page = sign_in(browser, live_server, "member")
    page.click("li:has-text('Lab team only') >> text=Start labeling")
    page.wait_for_selector("#label-form")


def test_labeling_at_phone_width_with_digit_scores_and_undo(live_server, browser, served_media, aspects):
    campaign = campaign_with_pairs(
        6, human_scores=True, score_min=1, score_max=5, worker_quota=3, humans_per_pair=2
    )
    keys = list(campaign.aspects.order_by("order").values_list("key", flat=True))
    page = browser.new_page(viewport={"width": 390, "height": 844}, has_touch=True)
    page.goto(f"{live_server.url}/c/{campaign.slug}/start?PROLIFIC_PID={PID}")
    page.wait_for_selector("#label-form")
    ARTIFACTS.mkdir(exist_ok=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    first = on_screen(page)
    # Per aspect: a choice, then two digits (left image's score, right image's), keyboard only.
    plan = [("a", "4", "2"), ("d", "1", "5"), ("s", "3", "3"), ("a", "5", "1")]
    for choice, left, right in plan:
        page.keyboard.press(choice)
        assert page.evaluate("document.activeElement.classList.contains('score-input')")
        page.keyboard.press(left)
        page.keyboard.press(right)
    assert page.input_value(f"input[name=score-left-{keys[1]}]") == "1"
    page.screenshot(path=str(ARTIFACTS / "labeling-390.png"), full_page=True)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "prev => !document.querySelector('#label-form').action.includes('/label/' + prev + '/')", arg=first
    )
    assignment = Assignment.objects.get(pk=first)
    stored = {
        j.aspect.key: (j.choice, j.score_a, j.score_b)
        for j in Judgment.objects.filter(assignment=assignment).select_related("aspect")
    }
    left_is_a = not assignment.swapped
    for key, (choice, left, right) in zip(keys, plan, strict=True):
        side = {"a": "left", "d": "right", "s": "tie"}[choice]
        expected_choice = "tie" if side == "tie" else ("A" if (side == "left") == left_is_a else "B")
        a, b = (float(left), float(right)) if left_is_a else (float(right), float(left))
        assert stored[key] == (expected_choice, a, b), key
    page.screenshot(path=str(ARTIFACTS / "labeling-390-next.png"), full_page=True)

    page.keyboard.press("u")  # undo: the first pair comes back with its answers
    page.wait_for_function(
        "prev => document.querySelector('#label-form').action.includes('/label/' + prev + '/')", arg=first
    )
    assert "Your last answer is back" in page.inner_text("#label-pane")
    assert page.input_value(f"input[name=score-left-{keys[0]}]") == "4"
    assert not Judgment.objects.filter(assignment=assignment).exists()
    page.keyboard.press("Enter")  # submit the same answers again
    page.wait_for_function(
        "prev => !document.querySelector('#label-form').action.includes('/label/' + prev + '/')", arg=first
    )
    assert Judgment.objects.filter(assignment=assignment).count() == 4
    assert Assignment.objects.get(pk=first).status == Assignment.Status.SUBMITTED
