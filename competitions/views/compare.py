"""The comparison page: two entries of one board, side by side, with the paired statistics."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from competitions import selectors
from competitions.selectors_compare import (
    NotComparable,
    NotOnBoard,
    WithheldByLadder,
    board_leader,
    entries_compare,
)
from competitions.views.common import competition_for, page_context, viewer_for


def _id(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@require_GET
def compare(request: HttpRequest, slug: str) -> HttpResponse:
    """?a=<submission>&b=<submission>&split=...; b defaults to the board's leader. The same
    visibility as the leaderboard; an entry not on the board is "not on the board"."""
    competition = competition_for(request, slug)
    viewer = viewer_for(request, competition)
    split = request.GET.get("split", "public")
    if split not in ("public", "private") or (
        split == "private" and not selectors.private_split_visible(request.user, competition)
    ):
        split = "public"
    a = _id(request.GET.get("a"))
    b = _id(request.GET.get("b")) or board_leader(competition=competition, split=split)
    comparison, problem, status = None, "", 200
    if a is None or b is None:
        problem = "Pick an entry on the leaderboard and follow its “compare” link."
    else:
        try:
            comparison = entries_compare(
                competition=competition, split=split, a_submission_id=a, b_submission_id=b
            )
        except NotOnBoard:
            problem, status = "Both entries must be on this leaderboard.", 404
        except NotComparable:
            problem = "These entries were scored without per-row values: no comparison."
        except WithheldByLadder:
            problem, status = WithheldByLadder.message, 403
    context = page_context(
        request,
        competition,
        viewer,
        "leaderboard",
        comparison=comparison,
        problem=problem,
        split=split,
    )
    return render(request, "competitions/compare.html", context, status=status)
