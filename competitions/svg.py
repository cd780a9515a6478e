"""Plots as inline SVG, drawn on the server: no script, no library, no network.

Each plot is an <svg role="img"> labelled by its <title> and <desc>, so a screen reader
announces what it shows; the desc states the figures a sighted reader would take from it.
Colours and text sizes come from classes styled in static/css/heldout.css (larger text
on a phone, where the picture is scaled down). `bounds` keeps an axis within a metric's
range: a single ROC AUC of 1 is drawn on an axis ending at 1, not 1.1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 44
# Room kept on each side of a time axis, as a share of its span: no dot on the edge.
TIME_PAD = 0.06
Bounds = tuple[float | None, float | None]
NO_BOUNDS: Bounds = (None, None)


@dataclass
class Series:
    label: str
    points: list[tuple[datetime, float]]
    css_class: str
    dots: bool = True
    # The step line; by default through the points themselves (e.g. a best-so-far line).
    line: list[tuple[datetime, float]] | None = None


def _clamp(value: float, bounds: Bounds) -> float:
    lowest, highest = bounds
    if lowest is not None:
        value = max(value, lowest)
    if highest is not None:
        value = min(value, highest)
    return value


def nice_ticks(low: float, high: float, count: int = 5, bounds: Bounds = NO_BOUNDS) -> list[float]:
    """Round tick values covering [low, high], within `bounds`: steps of 1, 2 or 5 times a
    power of ten."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        low, high = _clamp(low - pad, bounds), _clamp(high + pad, bounds)
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    inside = [t for t in ticks if _clamp(t, bounds) == t]
    return inside if len(inside) >= 2 else ticks


def count_ticks(high: int) -> list[float]:
    """Ticks for counts: whole numbers from 0."""
    step = max(1, math.ceil(nice_ticks(0, max(high, 1))[1]))
    return [float(v) for v in range(0, max(high, 1) + step, step)]


def _fmt(value: float) -> str:
    return f"{value:.4g}"


class _Frame:
    """Maps data to the plot area and draws the axes."""

    def __init__(self, x_low: float, x_high: float, y_ticks: list[float]):
        self.x_low, self.x_high = x_low, x_high if x_high > x_low else x_low + 1
        self.y_low, self.y_high = y_ticks[0], y_ticks[-1]
        self.y_ticks = y_ticks

    def x(self, value: float) -> float:
        span = self.x_high - self.x_low
        return LEFT + (value - self.x_low) / span * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        span = (self.y_high - self.y_low) or 1
        return HEIGHT - BOTTOM - (value - self.y_low) / span * (HEIGHT - TOP - BOTTOM)

    def axes(self, x_labels: list[tuple[float, str]], y_label: str) -> list[str]:
        parts = []
        for tick in self.y_ticks:
            y = self.y(tick)
            parts.append(
                f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>'
            )
        base = HEIGHT - BOTTOM
        parts.append(
            f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>'
        )
        for value, label in x_labels:
            x = self.x(value)
            # Labels at either end grow inwards, so they are never cut at the picture's edge.
            anchor = "end" if x > WIDTH - RIGHT - 40 else "start" if x < LEFT + 20 else "middle"
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{base + 18}" text-anchor="{anchor}">{escape(label)}</text>'
            )
        parts.append(
            f'<text class="axis-label" x="14" y="{(TOP + base) / 2:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 14 {(TOP + base) / 2:.1f})">{escape(y_label)}</text>'
        )
        return parts


def _svg(id_prefix: str, title: str, desc: str, body: list[str], legend: str = "") -> SafeString:
    head = (
        f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{id_prefix}-title {id_prefix}-desc" preserveAspectRatio="xMidYMid meet">'
        f'<title id="{id_prefix}-title">{escape(title)}</title>'
        f'<desc id="{id_prefix}-desc">{escape(desc)}</desc>'
    )
    return mark_safe(head + "".join(body) + "</svg>" + legend)  # every text above is escaped


def _time_labels(low: float, high: float, count: int = 5) -> list[tuple[float, str]]:
    span = high - low
    fmt = "%H:%M" if span < 2 * 86400 else "%b %d"
    labels: list[tuple[float, str]] = []
    for value in (low + span * i / (count - 1) for i in range(count)):
        text = datetime.fromtimestamp(value, tz=UTC).strftime(fmt)
        if not labels or labels[-1][1] != text:
            labels.append((value, text))
    return labels


def _time_range(series: Sequence[Series]) -> tuple[float, float]:
    """From the first dotted series' first point (the viewer's team: a newcomer's points
    are not squeezed against the edge by a leader's long history) to the last point."""
    times = [t.timestamp() for s in series for t, _v in s.points]
    focus = next((s for s in series if s.dots and s.points), None)
    x_low = min(t.timestamp() for t, _v in focus.points) if focus else min(times)
    x_high = max(times)
    if x_high - x_low < 3600:
        # A few minutes of history: centre it in an hour rather than stretch it.
        middle = (x_low + x_high) / 2
        return middle - 1800, middle + 1800
    pad = (x_high - x_low) * TIME_PAD
    return x_low - pad, x_high + pad


def _from(line: list[tuple[float, float]], x_low: float) -> list[tuple[float, float]]:
    """A step line cut at x_low: what came before starts it at its value then."""
    before = [p for p in line if p[0] < x_low]
    after = [p for p in line if p[0] >= x_low]
    return ([(x_low, before[-1][1])] if before else []) + after


def timeline(
    *,
    id_prefix: str,
    series: Sequence[Series],
    title: str,
    desc: str,
    y_label: str,
    bounds: Bounds = NO_BOUNDS,
) -> SafeString:
    """Scores over time: each series a best-so-far step line, its raw points as dots."""
    if not any(math.isfinite(v) for s in series for _t, v in s.points):
        return _svg(id_prefix, title, desc, [_empty_note()])
    x_low, x_high = _time_range(series)
    drawn = []
    for s in series:
        pts = sorted((t.timestamp(), v) for t, v in s.points if math.isfinite(v))
        line = sorted((t.timestamp(), v) for t, v in (s.line or s.points) if math.isfinite(v))
        drawn.append((s, [p for p in pts if p[0] >= x_low], _from(line, x_low)))
    shown = [v for _s, pts, line in drawn for _t, v in pts + line]
    frame = _Frame(x_low, x_high, nice_ticks(min(shown), max(shown), bounds=bounds))
    body = frame.axes(_time_labels(frame.x_low, frame.x_high), y_label)
    legend_items = []
    for s, pts, line in drawn:
        if not line:
            continue
        path = [f"M{frame.x(line[0][0]):.1f},{frame.y(line[0][1]):.1f}"]
        for x_val, y_val in line[1:]:
            path.append(f"H{frame.x(x_val):.1f}V{frame.y(y_val):.1f}")
        path.append(f"H{frame.x(frame.x_high):.1f}")
        body.append(f'<path class="line {s.css_class}" d="{"".join(path)}"/>')
        if s.dots:
            for x_val, y_val in pts:
                body.append(
                    f'<circle class="dot {s.css_class}" cx="{frame.x(x_val):.1f}" '
                    f'cy="{frame.y(y_val):.1f}" r="3.5"/>'
                )
        legend_items.append(
            f'<li><span class="swatch {s.css_class}" aria-hidden="true"></span>{escape(s.label)}</li>'
        )
    body.append(
        f'<text class="axis-label" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}" '
        'text-anchor="middle">Submitted (UTC)</text>'
    )
    legend = f'<ul class="legend">{"".join(legend_items)}</ul>'
    return _svg(id_prefix, title, desc, body, legend)


def histogram_counts(values: Sequence[float], bins: int) -> tuple[list[float], list[int]]:
    """Equal-width bins over the finite values: (edges, counts); the last bin is closed."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return [], []
    low, high = min(finite), max(finite)
    if high == low:
        return [low, low], [len(finite)]
    width = (high - low) / bins
    counts = [0] * bins
    for v in finite:
        counts[min(int((v - low) / width), bins - 1)] += 1
    return [low + width * i for i in range(bins + 1)], counts


def histogram(
    *,
    id_prefix: str,
    values: Sequence[float],
    title: str,
    desc: str,
    x_label: str,
    bins: int = 20,
    mark: float | None = None,
    mark_label: str = "",
    bounds: Bounds = NO_BOUNDS,
) -> SafeString:
    """How many teams scored in each range; `mark` draws a line at one score (the viewer's)."""
    edges, counts = histogram_counts(values, bins)
    if not counts:
        return _svg(id_prefix, title, desc, [_empty_note()])
    x_low, x_high = edges[0], edges[-1]
    if len(counts) == 1:
        # Every team has the same score: one narrow bar in a range around it, inside bounds.
        value = edges[0]
        pad = abs(value) * 0.1 or 0.1
        x_low, x_high = _clamp(value - pad, bounds), _clamp(value + pad, bounds)
        if x_high - x_low < 2 * pad:  # cut by a bound: the room goes to the other side
            x_low, x_high = (
                (x_high - 2 * pad, x_high) if x_high < value + pad else (x_low, x_low + 2 * pad)
            )
        half = pad / bins
        edges = [max(value - half, x_low), min(value + half, x_high)]
    frame = _Frame(x_low, x_high, count_ticks(max(counts)))
    x_ticks = nice_ticks(x_low, x_high)
    body = frame.axes([(t, _fmt(t)) for t in x_ticks if x_low <= t <= x_high], "Teams")
    for i, count in enumerate(counts):
        x0, x1 = frame.x(edges[i]), frame.x(edges[i + 1])
        y = frame.y(count)
        body.append(
            f'<rect class="bar" x="{x0 + 0.5:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
            f'height="{HEIGHT - BOTTOM - y:.1f}"><title>{_fmt(edges[i])} to {_fmt(edges[i + 1])}: '
            f"{count} team{'s' if count != 1 else ''}</title></rect>"
        )
    if mark is not None and math.isfinite(mark):
        x = frame.x(min(max(mark, x_low), x_high))
        # The label sits on the side of the line with room for it.
        right = x > (LEFT + WIDTH - RIGHT) / 2
        label_x, anchor = (x - 4, "end") if right else (x + 4, "start")
        body.append(
            f'<line class="mark" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>'
            f'<text class="mark-label" x="{label_x:.1f}" y="{TOP + 12}" text-anchor="{anchor}">'
            f"{escape(mark_label)}</text>"
        )
    body.append(
        f'<text class="axis-label" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    return _svg(id_prefix, title, desc, body)


def daily_bars(
    *, id_prefix: str, counts: Sequence[tuple[date, int]], title: str, desc: str
) -> SafeString:
    """One bar per day, e.g. submissions per day."""
    if not counts:
        return _svg(id_prefix, title, desc, [_empty_note()])
    frame = _Frame(0, len(counts), count_ticks(max(c for _d, c in counts)))
    step = max(len(counts) // 6, 1)
    labels = [(i + 0.5, d.strftime("%b %d")) for i, (d, _c) in enumerate(counts) if i % step == 0]
    body = frame.axes(labels, "Submissions")
    for i, (day, count) in enumerate(counts):
        x0, x1 = frame.x(i), frame.x(i + 1)
        y = frame.y(count)
        body.append(
            f'<rect class="bar" x="{x0 + 1:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 2, 1):.1f}" '
            f'height="{HEIGHT - BOTTOM - y:.1f}"><title>{day.isoformat()}: {count}</title></rect>'
        )
    return _svg(id_prefix, title, desc, body)


def _empty_note() -> str:
    return (
        f'<text class="tick" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
        "Nothing to plot yet.</text>"
    )
