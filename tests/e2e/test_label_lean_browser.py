"""In Chromium, each judgment set is one POST whose answer is the next pane; the skip dialog, sent once
with the page, skips the pair on screen; cached images and scripts are not asked for again."""

from __future__ import annotations

import re

import pytest

from annotate.models import Annotator, Assignment
from tests.annotate.test_assign_engine import campaign_with_pairs

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PID = "6a1e2d3c4b5a69788796a5b4"


def on_screen(page) -> int:
    return int(re.search(r"/label/(\d+)/submit", page.get_attribute("#label-form", "action")).group(1))


def wait_for_other_pair(page, previous: int) -> None:
    page.wait_for_function(
        "prev => { const f = document.querySelector('#label-form');"
        " return f && !f.action.includes('/label/' + prev + '/'); }",
        arg=previous,
    )


def test_one_post_per_set_and_the_skip_dialog_follows_the_pane(live_server, browser, served_media, aspects):
    campaign = campaign_with_pairs(8, worker_quota=6, gold_rate=0.0)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((r.method, r.url.removeprefix(live_server.url))))
    page.goto(
        f"{live_server.url}/c/{campaign.slug}/start?PROLIFIC_PID={PID}&STUDY_ID={'a' * 24}&SESSION_ID={'b' * 24}"
    )
    page.wait_for_load_state("load")
    scripts_at_start = [u for m, u in requests if u.startswith("/static/")]
    assert any("htmx" in u for u in scripts_at_start)
    requests.clear()

    submitted = []
    for _ in range(3):
        current = on_screen(page)
        for key in ["a", "d", "s", "a"]:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        wait_for_other_pair(page, current)
        submitted.append(current)
    posts = [u for m, u in requests if m == "POST"]
    assert posts == [f"/c/{campaign.slug}/label/{a}/submit" for a in submitted]
    # No page load, no GET of the pane, no script or style asked for again.
    assert not [u for m, u in requests if m == "GET" and not u.startswith("/media/")]

    # Skip through the dialog: it was sent with the page, and skips the pair now on screen.
    current = on_screen(page)
    page.keyboard.press("x")
    assert page.is_visible("#skip-dialog")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    wait_for_other_pair(page, current)
    annotator = Annotator.objects.get(platform="prolific", external_id=PID)
    skipped = Assignment.objects.get(pk=current, annotator=annotator)
    assert skipped.status == Assignment.Status.SKIPPED and skipped.skip_reason == "prompt_unclear"
    assert [u for m, u in requests if m == "POST"][-1] == f"/c/{campaign.slug}/label/{current}/skip"
    assert Assignment.objects.filter(annotator=annotator, status=Assignment.Status.SUBMITTED).count() == 3
