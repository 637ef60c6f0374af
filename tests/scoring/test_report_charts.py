"""Report charts: generator names stay tellable apart, and labels stay inside the plot."""

from __future__ import annotations

import re

from scoring.charts import BoardSeries, leaderboard_chart, rank_scatter

NAMES = {1: "demo-synthetic", 2: "demo-synthetic-glitchy-and-noisy-v2", 3: "corrupted-copies"}


def test_scatter_labels_are_whole_or_visibly_cut_and_point_inwards():
    human = {1: -0.1, 2: -0.5, 3: 0.5}
    judge = BoardSeries("simulated-judge", "#0072b2", {1: (0.05, 0, 0), 2: (-0.6, 0, 0), 3: (0.55, 0, 0)})
    svg = str(rank_scatter(human, [judge], NAMES, title="t"))
    texts = re.findall(r'font-size="10" fill="#667085" text-anchor="(start|end)">([^<]+)</text>', svg)
    by_name = {text: anchor for anchor, text in texts}
    assert by_name["demo-synthetic"] == "start"  # left half: label to the right of the point
    assert by_name["corrupted-copies"] == "end"  # right half: label to the left, inside the plot
    cut = next(text for text in by_name if text.startswith("demo-synthetic-"))
    assert cut.endswith("…") and len(cut) <= 24
    assert len(by_name) == 3


def test_leaderboard_row_names_are_cut_with_an_ellipsis():
    series = BoardSeries("humans", "#000", {2: (0.1, -0.2, 0.4)})
    svg = str(leaderboard_chart([(2, NAMES[2])], [series], title="t"))
    # Cut on the chart, whole in the tooltip.
    assert f"<title>{NAMES[2]}</title>demo-synthetic-glitchy-an…</text>" in svg
