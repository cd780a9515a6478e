"""The matrix page's body (templates/suites/_matrix_body.html), rendered once per matrix
token and pivot tag and kept (suites/matrix_cache.py); a worker that kept a new matrix
renders the body without a pivot at once (suites/tasks.py), so a read rarely renders it.

The table's rows are made in Python rather than in the template: a 500 x 50 matrix is
25 000 cells, which Django's template engine renders in about 2 s and this in about 0.1 s.

Contract: the same text as the template's filters would give. Every string from the data
is escaped; numbers are written as `floatformat` writes them (`fixed`: half up on the
float's shortest representation, never "-0.000"), checked against it in
tests/suites/test_matrix_html.py.

A cell's score links to its submission's entry page (manifest, replay) only where everyone
may see that page (competitions.permissions.entries_open_to_everyone: a row of a board
everyone sees): the body is kept for every reader, so a link must not depend on who asks.
What decides it counts the task's board version up, which changes the matrix's token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from html import escape

from django.template.defaultfilters import floatformat
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from competitions.permissions import entries_open_to_everyone
from suites import matrix_data
from suites.matrix_cache import kept_render
from suites.selectors import SuiteMatrix


def matrix_body_kept(*, matrix: SuiteMatrix, tag: str = "") -> bytes:
    """The page's body for the matrix, grouped by `tag` (one of its component tags, or "")."""
    return kept_render(
        suite=matrix.suite,
        token=matrix.token,
        parts=("page", tag),
        render=lambda: matrix_body(matrix=matrix, tag=tag),
    )


def wilcoxon_kept(*, matrix: SuiteMatrix) -> SafeString:
    """The pairwise Wilcoxon tests' table (templates/suites/_wilcoxon.html), rendered once
    per token and kept apart from the body (which it leaves as it is); "" below 2 methods x
    2 tasks."""
    if matrix.statistics is None:
        return mark_safe("")
    kept = kept_render(
        suite=matrix.suite,
        token=matrix.token,
        parts=("page-wilcoxon",),
        render=lambda: render_to_string(
            "suites/_wilcoxon.html", {"pairs": matrix_data.wilcoxon_pairs(matrix)}
        ).encode(),
    )
    return mark_safe(kept.decode())  # rendered by the template, which escapes the names


def matrix_body(*, matrix: SuiteMatrix, tag: str) -> bytes:
    suite = matrix.suite
    svg = matrix_data.cd_svg(matrix)
    data = matrix_data.matrix_data(matrix, pivot_tag=tag)
    context = {
        "suite": suite,
        "data": data,
        "rows_html": matrix_rows(
            data["rows"],
            lambda pk: reverse("suite-method", args=[suite.slug, pk]),
            entry_urls(matrix),
        ),
        "tags": matrix_data.component_tags(matrix),
        "tag": tag,
        "sentence": matrix_data.friedman_sentence(matrix),
        # Drawn by scoring.cd_diagram, which escapes every text it writes.
        "cd_svg": mark_safe(svg) if svg else "",
    }
    return render_to_string("suites/_matrix_body.html", context).encode()


def entry_urls(matrix: SuiteMatrix) -> dict[int, str]:
    """The entry page's URL of each cell's submission that everyone may see, by its id."""
    tasks = {t.key: t for t in matrix.tasks}
    open_ = entries_open_to_everyone({t.competition_id for t in matrix.tasks})
    # One reverse per task, not per cell: a 500 x 50 matrix has 25 000 cells.
    prefixes = {
        key: reverse("entry", args=[t.competition.slug, 0]).removesuffix("0/")
        for key, t in tasks.items()
    }
    return {
        sid: f"{prefixes[key]}{sid}/"
        for (_method, key), sid in matrix.submissions.items()
        if sid in open_ and key in prefixes
    }


def fixed(value: float, places: int) -> str:
    """floatformat(value, places) for a float and places > 0, about 7 times faster."""
    text = repr(value)
    decimals = len(text) - text.find(".") - 1
    # A tie on the shortest representation (floatformat rounds it half up, Python's format
    # rounds the binary value), an exponent, inf or nan: floatformat's own answer.
    if "e" in text or "n" in text or (decimals == places + 1 and text.endswith("5")):
        return str(floatformat(value, places))
    out = f"{value:.{places}f}"
    if out[0] == "-" and not out.strip("-0."):
        return out[1:]  # floatformat never writes a negative zero
    return out


def _rank(rank: float) -> str:
    # floatformat:"-1": no decimals for a whole number. Ranks are averages of tied
    # consecutive ranks: whole or halves.
    return str(int(rank)) if rank.is_integer() else fixed(rank, 1)


def _cell(c: dict, entry_urls: Mapping[int, str]) -> str:
    status = escape(c["status"])
    if c["status"] == "scored":
        shown = fixed(c["score"], 4)
        url = entry_urls.get(c.get("submission_id", 0))
        if url is not None:
            shown = f'<a href="{escape(url)}">{shown}</a>'
        if c["low"] is not None:
            shown += (
                f' <span class="interval muted small">[{fixed(c["low"], 3)}, '
                f"{fixed(c['high'], 3)}]</span>"
            )
        elif c["stale"]:
            shown += ' <span class="muted small">(interval being computed)</span>'
    else:
        shown = f'<span class="badge {status}">{status}</span>'
    win = (
        ' <span title="Best on the task">★</span><span class="visually-hidden"> (best)</span>'
        if c["win"]
        else ""
    )
    return (
        f'<td class="num cell-{status}" data-task="{escape(c["task"])}">{shown}<br>'
        f'<span class="small">{fixed(c["normalized"], 3)} · #{_rank(c["rank"])}{win}</span></td>'
    )


def matrix_rows(
    rows: list[dict],
    method_url: Callable[[int], str],
    entry_urls: Mapping[int, str] | None = None,
) -> SafeString:
    """matrix_data's rows as the table body's <tr> elements; `method_url(method_id)`, and
    a scored cell whose submission id is in `entry_urls` links its score there."""
    lines = []
    links = entry_urls or {}
    for r in rows:
        incomplete = "" if r["complete"] else ' <span class="muted small">(incomplete)</span>'
        cells = "".join(_cell(c, links) for c in r["cells"])
        lines.append(
            f'<tr><th scope="row"><a href="{escape(method_url(r["method_id"]))}">'
            f"{escape(r['method'])}</a>{incomplete}</th>{cells}"
            f'<td class="num">{fixed(r["mean_rank"], 2)}</td>'
            f'<td class="num">{fixed(r["mean_normalized"], 3)}</td>'
            f'<td class="num">{int(r["wins"])}</td></tr>'
        )
    return mark_safe("\n".join(lines))  # every value above is escaped or a number
