"""Which phase a leaderboard follows, and the columns it shows (Phase.board_metrics).

The board follows the latest phase started by now, else the first phase: the current phase
while one is open (services.submissions.current_phase), the last phase after the end, the
previous one between two phases. That phase's `board_metrics` choose the columns besides
the primary metric, which the board always ranks by and shows; none chosen: the task's
secondary metrics, as before phases chose.

`with_board_phase` reads the phase with the competition's row, in the statement that reads
the board token (boardcache.with_board_token), so a kept board still costs one query. The
phase's id is part of every board key (a phase starting changes no board version), and
`board_phase_until` (the next phase's start) bounds how long a kept anonymous copy is
served (competitions/boardfast.py); a changed phase row counts the board version up
(migration 0024).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import JSONField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from competitions.models import Competition, Phase, Task


def with_board_phase(competitions: QuerySet[Competition], now: datetime) -> QuerySet[Competition]:
    """`competitions` annotated with their board's phase at `now`: board_phase_id,
    board_phase_metrics (its board_metrics) and board_phase_until (when that can change)."""
    of = Phase.objects.filter(competition_id=OuterRef("pk"))
    started = of.filter(start_at__lte=now).order_by("-start_at")
    first = of.order_by("start_at")
    later = of.filter(start_at__gt=now).order_by("start_at")
    return competitions.annotate(
        board_phase_id=Coalesce(
            Subquery(started.values("pk")[:1]), Subquery(first.values("pk")[:1])
        ),
        board_phase_metrics=Coalesce(
            Subquery(started.values("board_metrics")[:1]),
            Subquery(first.values("board_metrics")[:1]),
            output_field=JSONField(),
        ),
        board_phase_until=Subquery(later.values("start_at")[:1]),
    )


def board_columns(task: Task, chosen: list[str] | None) -> list[str]:
    """The metrics shown besides the primary one: the phase's choice in its order (only
    metrics the task computes), or with none chosen the task's secondary metrics."""
    if not chosen:
        return list(task.secondary_metrics)
    return [m for m in chosen if m in task.secondary_metrics]


def board_phase_at(phases: list[Phase], now: datetime) -> Phase | None:
    """The phase a board follows at `now`, from the competition's `phases` (as read)."""
    started = [p for p in phases if p.start_at <= now]
    if started:
        return max(started, key=lambda p: p.start_at)
    return min(phases, key=lambda p: p.start_at, default=None)


def board_columns_of(competition: Competition) -> list[str]:
    """board_columns of a competition read through with_board_phase."""
    return board_columns(competition.task, getattr(competition, "board_phase_metrics", None))


def board_phase_key(competition: Competition) -> str:
    """The part of a board's cache key that names the phase whose columns it shows."""
    return f"phase:{getattr(competition, 'board_phase_id', None) or '-'}"
