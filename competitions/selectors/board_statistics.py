"""A board's statistics (models.BoardStatistics) as its pages read them: the bootstrap's
parameters, the sorted interval bounds, kept per process while the board's version stands
(`_BOUNDS`), and the plausible ranks looked up in them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from django.db.models import BinaryField, Case, F, OuterRef, Q, Subquery, Value, When

from competitions.models import BoardStatistics, BoardVersion, Competition
from scoring.statistics import RankBounds


def board_statistics_read(*, competition: Competition, split: str) -> Mapping[str, Any] | None:
    """The board's bootstrap parameters, sorted bounds and reference rows' summary
    (models.BoardStatistics), in one query. The bounds (16 bytes a row) come over the wire only when the board's version
    moved since this process last read them (`_BOUNDS`)."""
    stats = BoardStatistics.objects.filter(competition=competition, split=split)
    # Read in the same statement as the row: any write to the row counts the version up in
    # its own transaction (migration 0015_board_version), so the same version is the same
    # bounds.
    version = BoardVersion.objects.filter(competition_id=OuterRef("competition_id"))
    stats = stats.annotate(board_version=Subquery(version.values("version")[:1]))
    kept = _BOUNDS.get((competition.pk, split))
    if kept is not None:
        unchanged = Q(pk=kept[0], board_version=kept[1])
        stats = stats.annotate(
            new_bounds=Case(
                When(unchanged, then=Value(None)), default=F("bounds"), output_field=BinaryField()
            )
        )
    else:
        stats = stats.annotate(new_bounds=F("bounds"))
    row = stats.values(
        "pk", "seed", "resamples", "level", "references", "board_version", "new_bounds"
    ).first()
    if row is None:
        return None
    found = row["new_bounds"]
    if found is None and kept is not None:
        bounds = kept[2]
    else:
        bounds = bytes(found or b"")
        if row["board_version"] is not None:
            if len(_BOUNDS) >= _BOUNDS_KEPT:
                _BOUNDS.clear()  # rare: more boards read than kept; start again
            _BOUNDS[competition.pk, split] = (row["pk"], row["board_version"], bounds)
    return {
        "seed": row["seed"],
        "resamples": row["resamples"],
        "level": row["level"],
        "bounds": bounds,
        "references": row["references"],
    }


# (competition id, split) -> (statistics row id, board version, bounds): what this process
# last read of a board's bounds. Whole values replaced, never mutated: safe across threads.
_BOUNDS: dict[tuple[int, str], tuple[int, int, bytes]] = {}
_BOUNDS_KEPT = 256


def bounds_forgotten() -> None:
    """Forget the bounds kept (tests: a rolled-back database hands out its ids again)."""
    _BOUNDS.clear()


def plausible_ranks(
    stats: Mapping[str, Any] | None,
    higher_is_better: bool,
    intervals: list[tuple[float | None, float | None]],
) -> list[tuple[int | None, int | None, bool]]:
    """(best, worst, tied with the leader) for each interval, read from the board's sorted
    bounds in O(log n) each; (None, None, False) without an interval or bounds."""
    none: tuple[int | None, int | None, bool] = (None, None, False)
    if not stats or not stats["bounds"]:
        return [none] * len(intervals)
    board = RankBounds.from_bytes(bytes(stats["bounds"]), higher_is_better=higher_is_better)
    known = [i for i, (low, high) in enumerate(intervals) if low is not None and high is not None]
    found: list[tuple[int | None, int | None, bool]] = [none] * len(intervals)
    if known:
        best, worst = board.ranks(
            np.array([intervals[i][0] for i in known]), np.array([intervals[i][1] for i in known])
        )
        for k, i in enumerate(known):
            # Clipped: a row newer than the bounds may not be among them yet.
            top = max(len(board.lower), 1)
            found[i] = (min(int(best[k]), top), min(int(worst[k]), top), int(best[k]) == 1)
    return found
