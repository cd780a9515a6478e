"""Which phase a leaderboard follows, and the columns it shows (Phase.board_metrics).

The board follows the latest phase started by now, else the first phase: the current phase
while one is open (services.submissions.current_phase), the last phase after the end, the
previous one between two phases. That phase's `board_metrics` choose the columns besides
the primary metric, which the board always ranks by and shows; none chosen: the task's
secondary metrics, as before phases chose.

`with_board_phase` reads the phase with the competition's row, in the statement that reads
the board token (boardcache.with_board_token), so a kept board still costs one query; its
three subqueries' SQL is written once per process (`_phase_sql`), not built by the ORM on
every request (that cost 1.5 ms of a 15 ms board page: bench/bench_intervals.py). The
phase's id is part of every board key (a phase starting changes no board version), and
`board_phase_until` (the next phase's start) bounds how long a kept anonymous copy is
served (competitions/boardfast.py); a changed phase row counts the board version up
(migration 0024).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Expression, F, Field, QuerySet
from django.db.models.sql.compiler import SQLCompiler

from competitions.models import Competition, Phase, Task


def with_board_phase(competitions: QuerySet[Competition], now: datetime) -> QuerySet[Competition]:
    """`competitions` annotated with their board's phase at `now`: board_phase_id,
    board_phase_metrics (its board_metrics) and board_phase_until (when that can change)."""
    phase = Phase._meta
    return competitions.annotate(
        board_phase_id=_PhaseAt("id", now, output_field=phase.pk),
        board_phase_metrics=_PhaseAt("metrics", now, output_field=phase.get_field("board_metrics")),
        board_phase_until=_PhaseAt("until", now, output_field=phase.get_field("start_at")),
    )


class _PhaseAt(Expression):
    """One value of the phase a competition's board follows at `now` (`which`: its "id",
    its "metrics", or "until", the next phase's start): a correlated subquery whose SQL
    `_phase_sql` writes once per process and database vendor. Only the outer competition's
    column is compiled per statement (so the expression follows its query's aliases)."""

    def __init__(self, which: str, now: datetime, output_field: Field) -> None:
        super().__init__(output_field=output_field)
        self.which = which
        self.now = now
        self.competition: Any = F("pk")

    def get_source_expressions(self) -> list[Any]:
        return [self.competition]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.competition,) = exprs

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        competition, params = compiler.compile(self.competition)
        if params:  # (a column has none: the statements place `now` as their only one)
            raise ValueError("with_board_phase: the competition must be a plain column")
        before, after = _phase_sql(connection)[self.which]
        now = connection.ops.adapt_datetimefield_value(self.now)  # as a DateTimeField's lookup
        return f"{before}{competition}{after}", (now,)


# The SQL of each _PhaseAt, per database vendor: (the text before the outer competition's
# id, the text after it, where its one parameter, `now`, appears).
_statements: dict[str, dict[str, tuple[str, str]]] = {}


def _phase_sql(connection: BaseDatabaseWrapper) -> dict[str, tuple[str, str]]:
    """The statements of `_PhaseAt`. The board's phase is the latest started one, else the
    first one: ordering started phases first, latest first (their start; NULL for the
    others, last), then by start, picks it in one subquery instead of COALESCE over two. The
    alias `board_phase` cannot be one of the outer query's (table names and T0, U0, ...)."""
    statements = _statements.get(connection.vendor)
    if statements is not None:
        return statements
    quote, phase = connection.ops.quote_name, Phase._meta
    columns = {field.name: field.column for field in phase.concrete_fields if field.column}

    def column(name: str) -> str:
        return f"board_phase.{quote(columns[name])}"

    start = column("start_at")
    of = f"FROM {quote(phase.db_table)} board_phase WHERE {column('competition')} = "
    followed = (
        f" ORDER BY CASE WHEN {start} <= %s THEN {start} END DESC NULLS LAST, {start},"
        f" {column('id')} LIMIT 1)"
    )
    statements = {
        "id": (f"(SELECT {column('id')} {of}", followed),
        "metrics": (f"(SELECT {column('board_metrics')} {of}", followed),
        "until": (
            f"(SELECT {start} {of}",
            f" AND {start} > %s ORDER BY {start} LIMIT 1)",
        ),
    }
    _statements[connection.vendor] = statements
    return statements


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
