"""The critical-difference diagram (Demšar 2006) as an SVG string: no script, no font file.

Contract: `cd_diagram` takes the methods' names and mean ranks (1 = best), the critical
difference and the number of tasks, and returns one <svg role="img"> element labelled by
its <title> and <desc>; the desc says in words what the picture shows (every method's
mean rank, the critical difference, the groups not significantly different). Every text
is escaped. Strokes and text use currentColor, so the page's colours apply; the classes
(`plot cd-diagram`, `axis`, `tick`, `axis-label`) are those of the site's other plots.

Layout: the rank axis on top, rank 1 at the left; the CD bar above it; each method a line
dropping from its mean rank to its label, the better half labelled on the left and the
other half on the right; a thick bar joins each maximal group of methods whose mean ranks
differ by less than the critical difference (scoring.rank_tests.cliques).
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from scoring.rank_tests import ALPHA, cliques

WIDTH = 720
SIDE = 210  # room for the labels on either side of the axis
AXIS_Y = 58
ROW = 20  # between two labels
GROUP_GAP = 7  # between two group bars
LABEL_CHARS = 22  # longer names are cut, in full in the desc


def _fmt(value: float) -> str:
    return f"{value:.2f}"


def _short(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"


def describe(
    names: Sequence[str], mean_ranks: Sequence[float], cd: float, tasks: int, alpha: float
) -> str:
    """The diagram in words: what a screen reader announces."""
    order = sorted(range(len(names)), key=lambda i: (mean_ranks[i], i))
    ranked = "; ".join(f"{names[i]} {_fmt(mean_ranks[i])}" for i in order)
    groups = cliques(mean_ranks, cd)
    if groups:
        listed = "; ".join(", ".join(names[i] for i in g) for g in groups)
        same = f"Not significantly different from each other: {listed}."
    else:
        same = "Every pair of methods differs significantly."
    return (
        f"Mean ranks over {tasks} tasks, 1 = best: {ranked}. "
        f"Critical difference (Nemenyi, alpha {alpha:g}): {_fmt(cd)}. {same}"
    )


def cd_diagram(
    *,
    names: Sequence[str],
    mean_ranks: Sequence[float],
    cd: float,
    tasks: int,
    title: str = "Critical-difference diagram",
    id_prefix: str = "cd",
    alpha: float = ALPHA,
) -> str:
    """The diagram of methods `names` with `mean_ranks` (same order) and critical
    difference `cd` over `tasks` tasks (see the module docstring)."""
    k = len(names)
    if k < 2 or len(mean_ranks) != k:
        raise ValueError("A critical-difference diagram needs two or more methods, one rank each.")
    order = sorted(range(k), key=lambda i: (mean_ranks[i], i))
    groups = cliques(mean_ranks, cd)
    top_label = AXIS_Y + 22 + len(groups) * GROUP_GAP
    left_count = (k + 1) // 2
    height = top_label + max(left_count, k - left_count) * ROW + 8

    def x(rank: float) -> float:
        return SIDE + (rank - 1) / (k - 1) * (WIDTH - 2 * SIDE)

    body = [
        f'<line class="axis" x1="{x(1):.1f}" x2="{x(k):.1f}" y1="{AXIS_Y}" y2="{AXIS_Y}" '
        'stroke="currentColor"/>'
    ]
    for tick in range(1, k + 1):
        body.append(
            f'<line class="axis" x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{AXIS_Y - 5}" '
            f'y2="{AXIS_Y}" stroke="currentColor"/>'
            f'<text class="tick" x="{x(tick):.1f}" y="{AXIS_Y - 9}" text-anchor="middle" '
            f'font-size="11" fill="currentColor">{tick}</text>'
        )
    body.append(
        f'<text class="axis-label" x="{SIDE - 10}" y="{AXIS_Y + 4}" text-anchor="end" '
        'font-size="11" fill="currentColor">mean rank</text>'
    )
    # The CD bar, from rank 1, cut at the axis' end when the difference is wider.
    end = min(1 + cd, k)
    body.append(
        f'<g class="cd-bar"><line x1="{x(1):.1f}" x2="{x(end):.1f}" y1="18" y2="18" '
        f'stroke="currentColor" stroke-width="2"/>'
        f'<text class="axis-label" x="{(x(1) + x(end)) / 2:.1f}" y="12" text-anchor="middle" '
        f'font-size="11" fill="currentColor">CD = {_fmt(cd)}</text></g>'
    )
    for index, group in enumerate(groups):
        y = AXIS_Y + 12 + index * GROUP_GAP
        low, high = min(mean_ranks[i] for i in group), max(mean_ranks[i] for i in group)
        body.append(
            f'<line class="cd-group" x1="{x(low) - 4:.1f}" x2="{x(high) + 4:.1f}" y1="{y}" '
            f'y2="{y}" stroke="currentColor" stroke-width="4" stroke-linecap="round"/>'
        )
    for position, i in enumerate(order):
        on_left = position < left_count
        row = position if on_left else k - 1 - position
        y = top_label + row * ROW
        edge = SIDE - 14 if on_left else WIDTH - SIDE + 14
        text_x = edge - 4 if on_left else edge + 4
        label = f"{_short(names[i])} ({_fmt(mean_ranks[i])})"
        body.append(
            f'<g class="cd-method"><polyline fill="none" stroke="currentColor" '
            f'points="{x(mean_ranks[i]):.1f},{AXIS_Y} {x(mean_ranks[i]):.1f},{y} {edge:.1f},{y}"/>'
            f'<text class="cd-label" x="{text_x:.1f}" y="{y + 4}" '
            f'text-anchor="{"end" if on_left else "start"}" font-size="12" '
            f'fill="currentColor">{escape(label)}</text></g>'
        )
    desc = describe(names, mean_ranks, cd, tasks, alpha)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot cd-diagram" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" '
        f"aria-labelledby={quoteattr(f'{id_prefix}-title {id_prefix}-desc')} "
        f'font-family="sans-serif" preserveAspectRatio="xMidYMid meet">'
        f"<title id={quoteattr(id_prefix + '-title')}>{escape(title)}</title>"
        f"<desc id={quoteattr(id_prefix + '-desc')}>{escape(desc)}</desc>"
        + "".join(body)
        + "</svg>"
    )
