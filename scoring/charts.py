"""Server-side SVG charts for the report page: interval plots, a confusion heat map, leaderboards, a scatter.

SVG drawn here needs no JavaScript and no CDN, prints well, and looks the same in every browser and in
screenshots. Every text is escaped; every chart has a <title> for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

INK = "#1d2330"
MUTED = "#667085"
GRID = "#e3e6ec"
HUMAN = "#1d2330"
# Colour-blind-safe series colours (Okabe–Ito), one per AI judge.
SERIES = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9"]
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'


@dataclass(frozen=True)
class IntervalRow:
    """One line of an interval chart: a label, a point estimate and its interval (None when undefined)."""

    label: str
    estimate: float | None
    low: float | None
    high: float | None
    colour: str = INK
    note: str = ""


def _shorten(text: str, limit: int) -> str:
    """The text, or its first characters and an ellipsis: a cut name must not pass for another name."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _svg(width: int, height: int, title: str, body: list[str]) -> SafeString:
    return mark_safe(  # noqa: S308 - every interpolated text below goes through escape()
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" class="chart" {FONT} font-size="12"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def _ticks(low: float, high: float) -> list[float]:
    span = high - low
    step = next(s for s in (0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0) if span / s <= 8)
    start = math.ceil(low / step - 1e-9) * step
    return [round(start + k * step, 6) for k in range(int((high - start) / step + 1e-9) + 1)]


def _vertical_grid(
    x: Callable[[float], float],
    low: float,
    high: float,
    *,
    top: float,
    bottom: float,
    label_y: float,
    zero_dash: str,
) -> list[str]:
    """Vertical grid lines with tick labels under the plot, and a stronger line at zero when in range."""
    body = []
    for tick in _ticks(low, high):
        body.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" y2="{bottom}" stroke="{GRID}"/>')
        body.append(
            f'<text x="{x(tick):.1f}" y="{label_y}" text-anchor="middle" fill="{MUTED}">{tick:g}</text>'
        )
    if low < 0 < high:
        dash = f' stroke-dasharray="{zero_dash}"' if zero_dash else ""
        body.append(
            f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top}" y2="{bottom}" stroke="{MUTED}"{dash}/>'
        )
    return body


def interval_chart(
    rows: list[IntervalRow],
    *,
    title: str,
    domain: tuple[float, float] = (0.0, 1.0),
    reference: float | None = None,
) -> SafeString:
    """Horizontal point-and-interval chart, one row per figure, with the value printed at the right.

    ``reference`` draws a dashed line at a value the figures are read against (0.5: no position bias).
    """
    label_w, value_w, plot_w, row_h, top = 230, 150, 420, 26, 24
    width, height = label_w + plot_w + value_w, top + row_h * len(rows) + 24
    low_d = min([domain[0], *[r.low for r in rows if r.low is not None]])
    high_d = max([domain[1], *[r.high for r in rows if r.high is not None]])

    def x(v: float) -> float:
        return label_w + (v - low_d) / (high_d - low_d) * plot_w

    body = _vertical_grid(x, low_d, high_d, top=top - 6, bottom=height - 20, label_y=height - 6, zero_dash="")
    for k in range(0, len(rows), 2):
        body.append(
            f'<rect x="0" y="{top + row_h * k:.1f}" width="{width}" height="{row_h}" fill="#fafbfc"/>'
        )
    if reference is not None and low_d <= reference <= high_d:
        # Over the row stripes, under the figures.
        body.append(
            f'<line x1="{x(reference):.1f}" x2="{x(reference):.1f}" y1="{top - 6}" y2="{height - 20}" '
            f'stroke="{MUTED}" stroke-dasharray="4 3"/>'
        )
    for k, row in enumerate(rows):
        y = top + row_h * k + row_h / 2
        body.append(f'<text x="8" y="{y + 4:.1f}" fill="{INK}">{escape(row.label)}</text>')
        if row.estimate is None:
            body.append(
                f'<text x="{label_w + 6}" y="{y + 4:.1f}" fill="{MUTED}" font-style="italic">undefined</text>'
            )
            continue
        if row.low is not None and row.high is not None:
            body.append(
                f'<line x1="{x(row.low):.1f}" x2="{x(row.high):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="{row.colour}" stroke-width="2.5" stroke-linecap="round" opacity=".55"/>'
            )
            for end in (row.low, row.high):
                body.append(
                    f'<line x1="{x(end):.1f}" x2="{x(end):.1f}" y1="{y - 6:.1f}" y2="{y + 6:.1f}" stroke="{row.colour}" stroke-width="1.5"/>'
                )
        body.append(
            f'<circle cx="{x(row.estimate):.1f}" cy="{y:.1f}" r="5" fill="{row.colour}" stroke="#fff" stroke-width="1.5"/>'
        )
        body.append(
            f'<text x="{label_w + plot_w + 12}" y="{y + 4:.1f}" fill="{INK}" font-variant-numeric="tabular-nums">'
            f'<tspan font-weight="600">{_fmt(row.estimate)}</tspan>'
            f'<tspan fill="{MUTED}"> [{_fmt(row.low, 2)}, {_fmt(row.high, 2)}]</tspan></text>'
        )
    return _svg(width, height, title, body)


def confusion_heatmap(
    counts: list[list[int]], labels: list[str], *, title: str, colour: str = SERIES[0]
) -> SafeString:
    """3x3 heat map: rows the AI's choice, columns the human majority; shade by share of the column."""
    cell, left, top = 64, 70, 46
    n = len(labels)
    width, height = left + cell * n + 12, top + cell * n + 12
    column_totals = [sum(counts[r][c] for r in range(n)) for c in range(n)]
    body = [
        f'<text x="{left + cell * n / 2}" y="14" text-anchor="middle" fill="{MUTED}">human majority</text>',
        f'<text x="14" y="{top + cell * n / 2}" text-anchor="middle" fill="{MUTED}" '
        f'transform="rotate(-90 14 {top + cell * n / 2})">AI choice</text>',
    ]
    for c, label in enumerate(labels):
        body.append(
            f'<text x="{left + cell * c + cell / 2}" y="{top - 8}" text-anchor="middle" font-weight="600">{escape(label)}</text>'
        )
        body.append(
            f'<text x="{left - 8}" y="{top + cell * c + cell / 2 + 4}" text-anchor="end" font-weight="600">{escape(label)}</text>'
        )
    for r in range(n):
        for c in range(n):
            share = counts[r][c] / column_totals[c] if column_totals[c] else 0.0
            x, y = left + cell * c, top + cell * r
            text_colour = "#fff" if share > 0.55 else INK
            outline = f' stroke="{INK}" stroke-width="1.5"' if r == c else ""
            body.append(
                f'<rect x="{x + 1}" y="{y + 1}" width="{cell - 2}" height="{cell - 2}" rx="4" fill="{colour}" '
                f'fill-opacity="{0.06 + 0.94 * share:.3f}"{outline}/>'
            )
            body.append(
                f'<text x="{x + cell / 2}" y="{y + cell / 2}" text-anchor="middle" font-weight="600" fill="{text_colour}">{counts[r][c]}</text>'
            )
            body.append(
                f'<text x="{x + cell / 2}" y="{y + cell / 2 + 15}" text-anchor="middle" font-size="10" fill="{text_colour}">{share:.0%}</text>'
            )
    return _svg(width, height, title, body)


@dataclass(frozen=True)
class BoardSeries:
    """One leaderboard (human votes or one AI judge's) for the combined chart."""

    name: str
    colour: str
    rows: dict[int, tuple[float, float | None, float | None]]  # generator id -> (strength, low, high)


def leaderboard_chart(
    generators: list[tuple[int, str]], series: list[BoardSeries], *, title: str
) -> SafeString:
    """Bradley–Terry strengths with bootstrap intervals: one band per generator, one marker per series."""
    label_w, plot_w, band, top = 190, 560, 18 + 14 * len(series), 34
    width, height = label_w + plot_w + 20, top + band * len(generators) + 26
    values = [v for s in series for row in s.rows.values() for v in row if v is not None] or [-1.0, 1.0]
    low_d, high_d = min(values), max(values)
    pad = (high_d - low_d) * 0.06 or 0.5
    low_d, high_d = low_d - pad, high_d + pad

    def x(v: float) -> float:
        return label_w + (v - low_d) / (high_d - low_d) * plot_w

    body = []
    for k, s in enumerate(series):  # legend
        body.append(f'<circle cx="{label_w + 10 + 150 * k}" cy="12" r="5" fill="{s.colour}"/>')
        body.append(f'<text x="{label_w + 20 + 150 * k}" y="16">{escape(_shorten(s.name, 20))}</text>')
    body += _vertical_grid(x, low_d, high_d, top=top, bottom=height - 20, label_y=height - 6, zero_dash="3 3")
    for g, (gen_id, name) in enumerate(generators):
        y0 = top + band * g
        if g % 2 == 0:
            body.append(f'<rect x="0" y="{y0}" width="{width}" height="{band}" fill="#fafbfc"/>')
        body.append(
            f'<text x="8" y="{y0 + band / 2 + 4}" fill="{INK}"><title>{escape(name)}</title>{escape(_shorten(name, 26))}</text>'
        )
        for k, s in enumerate(series):
            if gen_id not in s.rows:
                continue
            strength, low, high = s.rows[gen_id]
            y = y0 + 9 + 14 * k + 2
            if low is not None and high is not None:
                body.append(
                    f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y}" y2="{y}" stroke="{s.colour}" stroke-width="2.5" opacity=".5" stroke-linecap="round"/>'
                )
            body.append(
                f'<circle cx="{x(strength):.1f}" cy="{y}" r="4.5" fill="{s.colour}" stroke="#fff" stroke-width="1.2"/>'
            )
    return _svg(width, height, title, body)


def rank_scatter(
    human: dict[int, float], series: list[BoardSeries], names: dict[int, str], *, title: str
) -> SafeString:
    """Human strength (x) against each AI judge's strength (y) per generator, with the y = x line."""
    size, margin = 360, 46
    width, height = size + margin + 150, size + margin + 10
    values = list(human.values()) + [row[0] for s in series for row in s.rows.values()] or [-1.0, 1.0]
    low_d, high_d = min(values), max(values)
    pad = (high_d - low_d) * 0.08 or 0.5
    low_d, high_d = low_d - pad, high_d + pad

    def px(v: float) -> float:
        return margin + (v - low_d) / (high_d - low_d) * size

    def py(v: float) -> float:
        return 10 + size - (v - low_d) / (high_d - low_d) * size

    body = [f'<rect x="{margin}" y="10" width="{size}" height="{size}" fill="#fafbfc" stroke="{GRID}"/>']
    for tick in _ticks(low_d, high_d):
        body.append(
            f'<text x="{px(tick):.1f}" y="{size + 26}" text-anchor="middle" fill="{MUTED}">{tick:g}</text>'
        )
        body.append(
            f'<text x="{margin - 6}" y="{py(tick) + 4:.1f}" text-anchor="end" fill="{MUTED}">{tick:g}</text>'
        )
    body.append(
        f'<line x1="{px(low_d):.1f}" y1="{py(low_d):.1f}" x2="{px(high_d):.1f}" y2="{py(high_d):.1f}" stroke="{MUTED}" stroke-dasharray="4 4"/>'
    )
    body.append(
        f'<text x="{margin + size / 2}" y="{size + 44}" text-anchor="middle" fill="{MUTED}">human strength</text>'
    )
    body.append(
        f'<text x="12" y="{10 + size / 2}" text-anchor="middle" fill="{MUTED}" transform="rotate(-90 12 {10 + size / 2})">AI strength</text>'
    )
    for k, s in enumerate(series):
        body.append(f'<circle cx="{margin + size + 18}" cy="{20 + 18 * k}" r="5" fill="{s.colour}"/>')
        body.append(f'<text x="{margin + size + 28}" y="{24 + 18 * k}">{escape(_shorten(s.name, 18))}</text>')
        for gen_id, (strength, _low, _high) in s.rows.items():
            if gen_id not in human:
                continue
            cx, cy = px(human[gen_id]), py(strength)
            body.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5.5" fill="{s.colour}" fill-opacity=".85" stroke="#fff">'
                f"<title>{escape(names.get(gen_id, str(gen_id)))}: human {human[gen_id]:.2f}, {escape(s.name)} {strength:.2f}</title></circle>"
            )
            if k == 0:
                # Labels point inwards (left of points in the right half) so they stay inside the plot.
                right_half = cx > margin + size / 2
                x, anchor = (cx - 7, "end") if right_half else (cx + 7, "start")
                label = escape(_shorten(names.get(gen_id, ""), 24))
                body.append(
                    f'<text x="{x:.1f}" y="{cy - 6:.1f}" font-size="10" fill="{MUTED}" text-anchor="{anchor}">{label}</text>'
                )
    return _svg(width, height, title, body)


@dataclass(frozen=True)
class Curve:
    """One line of a training curve: (step, value) points in step order."""

    label: str
    points: list[tuple[float, float]]
    colour: str = INK


def curve_chart(
    curves: list[Curve],
    *,
    title: str,
    y_label: str,
    domain: tuple[float, float] | None = None,
    reference: float | None = None,
    width: int = 560,
    height: int = 220,
) -> SafeString | None:
    """A line chart of values against training steps (loss, validation accuracy), with a legend."""
    curves = [c for c in curves if c.points]
    if not curves:
        return None
    xs = [x for c in curves for x, _ in c.points]
    ys = [y for c in curves for _, y in c.points if math.isfinite(y)]
    x_low, x_high = 0.0, max(max(xs), 1.0)
    if domain is None:
        low, high = (min(ys), max(ys)) if ys else (0.0, 1.0)
        pad = (high - low) * 0.08 or 0.05
        domain = (low - pad, high + pad)
    y_low, y_high = domain
    left, right, top, bottom = 48, 16, 26, height - 44
    legend_y = height - 10

    def x(value: float) -> float:
        return left + (value - x_low) / (x_high - x_low) * (width - left - right)

    def y(value: float) -> float:
        clamped = min(max(value, y_low), y_high)
        return bottom - (clamped - y_low) / (y_high - y_low) * (bottom - top)

    body = [
        f'<text x="{left}" y="14" fill="{INK}" font-weight="600">{escape(_shorten(title, 70))}</text>',
        f'<text x="4" y="{(top + bottom) / 2:.1f}" fill="{MUTED}" font-size="10" '
        f'transform="rotate(-90 10 {(top + bottom) / 2:.1f})" text-anchor="middle">{escape(y_label)}</text>',
    ]
    for tick in _ticks(y_low, y_high):
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{GRID}"/>'
        )
        body.append(
            f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="{MUTED}">{tick:g}</text>'
        )
    body.append(
        f'<text x="{width - right}" y="{bottom + 14}" text-anchor="end" fill="{MUTED}">step {x_high:g}</text>'
        f'<text x="{left}" y="{bottom + 14}" fill="{MUTED}">0</text>'
    )
    if reference is not None and y_low <= reference <= y_high:
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(reference):.1f}" y2="{y(reference):.1f}" '
            f'stroke="{MUTED}" stroke-dasharray="4 3"/>'
        )
    legend_x = float(left)
    for curve in curves:
        finite = [(px, py) for px, py in curve.points if math.isfinite(py)]
        path = " ".join(f"{x(px):.1f},{y(py):.1f}" for px, py in finite)
        body.append(f'<polyline points="{path}" fill="none" stroke="{curve.colour}" stroke-width="1.8"/>')
        for px, py in finite:
            body.append(
                f'<circle cx="{x(px):.1f}" cy="{y(py):.1f}" r="2.2" fill="{curve.colour}">'
                f"<title>{escape(curve.label)} at step {px:g}: {py:.4g}</title></circle>"
            )
        body.append(
            f'<rect x="{legend_x:.1f}" y="{legend_y - 8}" width="10" height="3" fill="{curve.colour}"/>'
            f'<text x="{legend_x + 14:.1f}" y="{legend_y - 4}" fill="{INK}">{escape(_shorten(curve.label, 24))}</text>'
        )
        legend_x += 24 + 7 * min(len(curve.label), 24)
    return _svg(width, height, title, body)
