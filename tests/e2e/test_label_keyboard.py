"""A crowdworker arrives through a Prolific link and labels five pairs with the keyboard only (headless Chromium)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from annotate.models import Annotator, Assignment, Judgment
from tests.annotate.test_assign_engine import campaign_with_pairs

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PID = "5f1e2d3c4b5a69788796a5b4"
# Per pair, the keys pressed for the four aspects (in order), and what each key means on screen.
KEYS = [
    ["a", "d", "s", "a"],
    ["ArrowRight", "ArrowLeft", "t", "d"],
    ["d", "d", "d", "d"],
    ["a", "s", "ArrowLeft", "s"],
    ["s", "a", "d", "ArrowRight"],
]
SIDE = {"a": "left", "ArrowLeft": "left", "d": "right", "ArrowRight": "right", "s": "tie", "t": "tie"}
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
# The Chromium fixtures (browser, served_media) live in tests/e2e/conftest.py.


def on_screen(page) -> int:
    action = page.get_attribute("#label-form", "action")
    return int(re.search(r"/label/(\d+)/submit", action).group(1))


def test_worker_labels_five_pairs_with_the_keyboard_and_gets_the_code(
    live_server, browser, served_media, aspects
):
    campaign = campaign_with_pairs(8, worker_quota=5, completion_code="VP-DONE-5", gold_rate=0.0)
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(
        f"{live_server.url}/c/{campaign.slug}/start?PROLIFIC_PID={PID}&STUDY_ID={'a' * 24}&SESSION_ID={'b' * 24}"
    )
    page.wait_for_load_state("load")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "labeling-screen.png"))

    pressed: dict[int, list[str]] = {}
    previous = None
    for number, keys in enumerate(KEYS):
        page.wait_for_function(
            "prev => { const f = document.querySelector('#label-form'); return f && !f.action.includes('/label/' + prev + '/'); }",
            arg=previous,
        )
        current = on_screen(page)
        assert page.evaluate(
            "document.activeElement.classList.contains('aspect')"
        )  # focus is visible on an aspect
        for key in keys:
            page.keyboard.press(key)
        if number == 0:
            page.keyboard.press("?")
            assert page.is_visible("#help-dialog")
            page.keyboard.press("Escape")
        page.keyboard.press("Enter")
        pressed[current] = [SIDE[k] for k in keys]
        previous = current

    page.wait_for_selector("#completion-code")
    assert page.inner_text("#completion-code") == "VP-DONE-5"
    page.screenshot(path=str(ARTIFACTS / "labeling-complete.png"))

    annotator = Annotator.objects.get(platform="prolific", external_id=PID)
    aspect_keys = [a.key for a in campaign.aspects.order_by("order")]
    expected = set()
    for assignment_id, sides in pressed.items():
        assignment = Assignment.objects.get(pk=assignment_id, annotator=annotator)
        assert assignment.status == Assignment.Status.SUBMITTED
        left, right = ("B", "A") if assignment.swapped else ("A", "B")
        canonical = {"left": left, "right": right, "tie": "tie"}
        order = "BA" if assignment.swapped else "AB"
        for key, side in zip(aspect_keys, sides, strict=True):
            expected.add((assignment.pair_id, key, canonical[side], order))
    stored = set(
        Judgment.objects.filter(annotator=annotator).values_list(
            "pair_id", "aspect__key", "choice", "presented_order"
        )
    )
    assert stored == expected and Judgment.objects.count() == 20
