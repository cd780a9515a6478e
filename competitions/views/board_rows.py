"""The leaderboard page's rows, as HTML built here rather than in the template: a page has
50 rows of a dozen cells, and the template language spends most of a page's render on them
(a context lookup per variable, Decimal arithmetic in every `floatformat`, a `{% url %}` per
row). The markup is the one templates/competitions/leaderboard.html used to loop over, cell
for cell, reference rows (selectors_references.ReferenceRow) among them; every value from
the data is escaped (`escape`), numbers are formatted as `floatformat:5` (the normalized
score as `floatformat:3`) and `date:"Y-m-d H:i"` format them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from competitions.selectors import LeaderboardRow
from competitions.selectors_references import ReferenceRow

_PLACES = {3: Decimal("0.001"), 5: Decimal("0.00001")}
# Past this, floatformat's own code (grouping, huge exponents): never on a real board.
_FAST_LIMIT = 1e15
# A stand-in submission id: the entry URL is reversed once per page, not once per row.
_ID_MARK = "987654321"
DASH = "\u2013"  # the en dash of the ranges (intervals, plausible ranks)
REPLICATION_LABELS = {"reproduced": "Reproduced", "within_tolerance": "Reproduced within tolerance"}


def fixed5(value: float | int | None) -> str:
    """`value|floatformat:5` (half up on the value's shortest repr, "-0.00000" shown as
    "0.00000", "" for None), without the template filter's localisation work."""
    return _fixed(value, 5)


def fixed3(value: float | int | None) -> str:
    """`value|floatformat:3`, as `fixed5` does it."""
    return _fixed(value, 3)


def _fixed(value: float | int | None, places: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, float | int):
        return floatformat(value, places)
    if not math.isfinite(value) or abs(value) >= _FAST_LIMIT:
        return floatformat(value, places)
    rounded = Decimal(repr(value)).quantize(_PLACES[places], rounding=ROUND_HALF_UP)
    return format(rounded.copy_abs() if rounded.is_zero() else rounded, "f")


def minute(value: datetime) -> str:
    """`value|date:"Y-m-d H:i"` in the current time zone."""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.strftime("%Y-%m-%d %H:%M")


def rows_html(
    rows: Iterable[LeaderboardRow | ReferenceRow],
    *,
    slug: str,
    split: str,
    my_team_id: int | None,
    show_since_public: bool,
    compare_url: str | None,
) -> SafeString:
    """The <tr> elements of `rows` (each team row with `tied` set by the view); no compare
    link without a `compare_url` (the public split of a Ladder board is never compared)."""
    entry_head, entry_tail = reverse("entry", args=[slug, _ID_MARK]).rsplit(_ID_MARK, 1)
    compare_head = f"{escape(compare_url)}?split={escape(split)}&amp;a=" if compare_url else ""
    out: list[str] = []
    for row in rows:
        if isinstance(row, ReferenceRow):
            out.append(_reference(row, show_since_public))
            continue
        mine = row.team_id == my_team_id
        out.append('\n<tr class="mine">\n' if mine else "\n<tr>\n")
        tie = (
            f'<span class="tie" title="Tied: shares rank {row.rank}">=</span>'
            if getattr(row, "tied", False)
            else ""
        )
        out.append(f'  <td class="num" id="team-{row.team_id}">{tie}{row.rank}</td>\n')
        out.append(
            f'  <td><a href="{entry_head}{row.submission_id}{entry_tail}">{escape(row.team)}</a>'
        )
        if mine:
            out.append('<span class="you">your team</span>')
        if row.replication:
            label = REPLICATION_LABELS.get(row.replication, "Diverged")
            out.append(
                f' <span class="badge replication {escape(row.replication)}" title="Replicated: '
                f'the same image run and scored again">{label}</span>'
            )
        out.append(f'</td>\n  <td class="num">{fixed5(row.score)}</td>\n')
        if row.ci_low is not None:
            interval = f"{fixed5(row.ci_low)} {DASH} {fixed5(row.ci_high)}"
        else:
            interval = (
                '<span class="muted" title="Computed by a worker shortly after the entry '
                'changes">pending</span>'
            )
        out.append(f'  <td class="num interval">{interval}</td>\n')
        out.append(f'  <td class="num normalized">{fixed3(row.normalized_score)}</td>\n')
        out.append(f'  <td class="num plausible-rank">{_plausible(row)}')
        if compare_head:
            out.append(
                f' <a class="compare" href="{compare_head}{row.submission_id}" '
                'title="Compare with the leader">compare</a>'
            )
        out.append("</td>\n  ")
        if show_since_public:
            out.append(_since_public(row))
        out.append("\n  ")
        out.extend(f'<td class="num">{fixed5(v)}</td>' for v in row.secondary)
        out.append(f'\n  <td class="num">{row.entries}</td>\n')
        out.append(f"  <td>{minute(row.last_submission_at)}</td>\n</tr>\n")
    return mark_safe("".join(out))  # every value above is escaped, or a number


def _reference(row: ReferenceRow, show_since_public: bool) -> str:
    """A reference row: not ranked, not a team, no entry of its own (docs/leaderboard.md)."""
    interval = ""
    if row.ci_low is not None:
        interval = f"{fixed5(row.ci_low)} {DASH} {fixed5(row.ci_high)}"
    return "".join(
        [
            '\n<tr class="reference">\n',
            '  <td class="num"><span class="visually-hidden">Not ranked</span></td>\n',
            '  <td><span class="badge reference" title="Made by the platform: never ranked, not '
            f'a team">Reference</span> {escape(row.label)}</td>\n',
            f'  <td class="num">{fixed5(row.score)}</td>\n',
            f'  <td class="num interval">{interval}</td>\n',
            f'  <td class="num normalized">{fixed3(row.normalized_score)}</td>\n',
            '  <td class="num plausible-rank"><span class="muted">not ranked</span></td>\n  ',
            '<td class="num since-public"></td>' if show_since_public else "",
            "\n  ",
            *(f'<td class="num">{fixed5(v)}</td>' for v in row.secondary),
            '\n  <td class="num"></td>\n  <td></td>\n</tr>\n',
        ]
    )


def _plausible(row: LeaderboardRow) -> str:
    text = ""
    if row.rank_best is not None:
        same = row.rank_best == row.rank_worst
        text = f"{row.rank_best}" if same else f"{row.rank_best}{DASH}{row.rank_worst}"
    if row.tied_with_leader:
        text += (
            ' <span class="badge leader-tie" title="Statistically tied with the leader: '
            'no entry is surely better">≈ #1</span>'
        )
    return text


def _since_public(row: LeaderboardRow) -> str:
    inner = ""
    if row.public_rank is not None:
        inner = f'<span title="Public rank {row.public_rank}">{escape(row.since_public)}</span>'
        if row.beyond_sampling:
            inner += (
                ' <span class="badge beyond-sampling" title="Beyond sampling: the plausible '
                'ranks on the two boards do not overlap">!</span>'
            )
    return f'<td class="num since-public">{inner}</td>'
