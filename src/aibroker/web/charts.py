"""Server-rendered SVG charts: a line chart for time series, a bar chart for breakdowns.

Each comes as a <figure> with a title, axis labels, an SVG description (role="img") and the
data as a table, so it reads without JavaScript and with a screen reader."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

Format = Callable[[int | float], str]
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 16, 48
_ids = itertools.count(1)


def _plain(value: int | float) -> str:
    return f"{value:,}"


def _table(title: str, label_head: str, value_head: str, points: Sequence[tuple[str, int | float]], fmt: Format) -> str:
    rows = "".join(f"<tr><th scope=\"row\">{escape(label)}</th><td>{escape(fmt(value))}</td></tr>" for label, value in points)
    return (f"<details class=\"chart-data\"><summary>Data: {escape(title)}</summary><table><thead><tr>"
            f"<th scope=\"col\">{escape(label_head)}</th><th scope=\"col\">{escape(value_head)}</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></details>")


def _figure(chart_id: str, title: str, description: str, svg_body: str, table: str) -> Markup:
    return Markup(
        f"<figure class=\"chart\" id=\"{chart_id}\"><figcaption id=\"{chart_id}-title\">{escape(title)}</figcaption>"
        f"<svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-labelledby=\"{chart_id}-title {chart_id}-desc\" "
        f"preserveAspectRatio=\"xMidYMid meet\"><desc id=\"{chart_id}-desc\">{escape(description)}</desc>{svg_body}</svg>"
        f"{table}</figure>"
    )


def _axes(x_label: str, y_label: str, top_value: str) -> str:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    mid_y = TOP + (bottom - TOP) / 2
    return (
        f"<line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\"/>"
        f"<line class=\"axis\" x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\"/>"
        f"<line class=\"grid\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{right}\" y2=\"{TOP}\"/>"
        f"<text class=\"tick\" x=\"{LEFT - 6}\" y=\"{TOP + 4}\" text-anchor=\"end\">{escape(top_value)}</text>"
        f"<text class=\"tick\" x=\"{LEFT - 6}\" y=\"{bottom + 4}\" text-anchor=\"end\">0</text>"
        f"<text class=\"axis-label\" x=\"{(LEFT + right) / 2}\" y=\"{HEIGHT - 6}\" text-anchor=\"middle\">{escape(x_label)}</text>"
        f"<text class=\"axis-label\" x=\"14\" y=\"{mid_y}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {mid_y})\">{escape(y_label)}</text>"
    )


def _no_data(chart_id: str, title: str, x_label: str, y_label: str) -> Markup:
    return _figure(chart_id, title, f"{title}: no data in this period.",
                   _axes(x_label, y_label, "0") + f"<text class=\"empty\" x=\"{WIDTH / 2}\" y=\"{HEIGHT / 2}\" "
                   "text-anchor=\"middle\">No data yet</text>", "")


def line_chart(title: str, points: Sequence[tuple[str, int | float]], *, x_label: str, y_label: str,
               fmt: Format = _plain) -> Markup:
    """`points`: (label, value) in time order, e.g. ("2026-12-01", 1200000)."""
    chart_id = f"chart-{next(_ids)}"
    if not points:
        return _no_data(chart_id, title, x_label, y_label)
    peak = max(value for _, value in points) or 1
    bottom, span_x, span_y = HEIGHT - BOTTOM, WIDTH - RIGHT - LEFT, HEIGHT - BOTTOM - TOP
    step = span_x / max(1, len(points) - 1)
    coords = [(LEFT + (i * step if len(points) > 1 else span_x / 2), bottom - value / peak * span_y) for i, (_, value) in enumerate(points)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(f"<circle class=\"dot\" cx=\"{x:.1f}\" cy=\"{y:.1f}\" r=\"3.5\"><title>{escape(label)}: {escape(fmt(value))}</title></circle>"
                   for (x, y), (label, value) in zip(coords, points, strict=True))
    ticks = {0, len(points) // 2, len(points) - 1}
    labels = "".join(f"<text class=\"tick\" x=\"{coords[i][0]:.1f}\" y=\"{bottom + 16}\" text-anchor=\"middle\">{escape(points[i][0])}</text>"
                     for i in sorted(ticks))
    body = _axes(x_label, y_label, fmt(peak)) + f"<polyline class=\"line\" points=\"{path}\"/>" + dots + labels
    total = sum(value for _, value in points)
    description = (f"{title}: {len(points)} points from {points[0][0]} to {points[-1][0]}; highest {fmt(peak)}, total {fmt(total)}.")
    return _figure(chart_id, title, description, body, _table(title, x_label, y_label, points, fmt))


def bar_chart(title: str, bars: Sequence[tuple[str, int | float]], *, x_label: str, y_label: str,
              fmt: Format = _plain) -> Markup:
    """`bars`: (label, value), largest first, e.g. ("gpt-4o-mini", 350000). Vertical bars."""
    chart_id = f"chart-{next(_ids)}"
    if not bars:
        return _no_data(chart_id, title, x_label, y_label)
    peak = max(value for _, value in bars) or 1
    bottom, span_x, span_y = HEIGHT - BOTTOM, WIDTH - RIGHT - LEFT, HEIGHT - BOTTOM - TOP
    slot = span_x / len(bars)
    width = max(4.0, slot * 0.7)
    parts = []
    for i, (label, value) in enumerate(bars):
        height = value / peak * span_y
        x = LEFT + i * slot + (slot - width) / 2
        short = label if len(label) <= 14 else label[:13] + "…"
        parts.append(f"<rect class=\"bar\" x=\"{x:.1f}\" y=\"{bottom - height:.1f}\" width=\"{width:.1f}\" height=\"{height:.1f}\">"
                     f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>"
                     f"<text class=\"tick\" x=\"{x + width / 2:.1f}\" y=\"{bottom + 16}\" text-anchor=\"middle\">{escape(short)}</text>")
    description = f"{title}: " + "; ".join(f"{label} {fmt(value)}" for label, value in bars[:10]) + "."
    return _figure(chart_id, title, description, _axes(x_label, y_label, fmt(peak)) + "".join(parts),
                   _table(title, x_label, y_label, bars, fmt))
