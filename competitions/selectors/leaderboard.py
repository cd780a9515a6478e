"""A board page (leaderboard_page) and the shake-up report (shakeup_report).

A page costs a fixed number of queries whatever the board's length: its rows in index
order, the rows above it skipped in the index alone, one aggregate for its ranks and
counts, and the board's statistics (board_statistics.py) for its plausible ranks and
reference rows. Ranks are always the board's, whatever the page's order or search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Lower

from competitions.models import (
    Competition,
    LeaderboardEntry,
    Replication,
    ShakeupEntry,
)
from competitions.selectors.board_statistics import board_statistics_read, plausible_ranks
from competitions.selectors_references import (
    ReferenceMissing,
    ReferenceRow,
    reference_rows,
    sort_key,
)
from scoring.metrics import metric_get, normalized_score
from scoring.shakeup import change_label


@dataclass
class LeaderboardRow:
    rank: int
    team_id: int
    team: str
    submission_id: int
    score: float
    scores: dict[str, float | None]
    secondary: list[float | None]
    submitted_at: datetime
    entries: int
    last_submission_at: datetime
    replication: str = ""  # the latest finished replication's outcome, if any
    # The 95 % bootstrap interval and plausible ranks (services/intervals.py); None until
    # a worker computed them.
    ci_low: float | None = None
    ci_high: float | None = None
    rank_best: int | None = None
    rank_worst: int | None = None
    tied_with_leader: bool = False
    # Private board after finalize (services/shakeup.py): the team's public rank, places
    # gained since it (negative: lost), and whether row sampling alone does not explain it.
    public_rank: int | None = None
    rank_change: int | None = None
    beyond_sampling: bool | None = None
    # 0 = the constant predictor's score, 1 = a perfect score (scoring.baselines); None
    # until the constant predictor of the ranked version is scored.
    normalized_score: float | None = None
    # Whether another row shares the rank; set on a sorted or searched page (its neighbours
    # are not its rank's), else the page tells from the rows around it.
    tied: bool | None = None
    is_reference = False

    @property
    def since_public(self) -> str:
        return change_label(self.rank_change)


@dataclass(frozen=True)
class Bootstrap:
    """How the board's intervals were drawn (models.BoardStatistics)."""

    seed: int
    resamples: int
    level: float


@dataclass
class LeaderboardPage:
    split: str
    metric: str
    metric_label: str
    higher_is_better: bool
    secondary_metrics: list[str]
    count: int
    rows: list[LeaderboardRow]
    bootstrap: Bootstrap | None = None  # None until a worker computed the board's intervals
    matching: int | None = None  # with a team search: how many rows match
    # The ranked version's reference rows, best first, wherever they fall (paging aside),
    # and the references not made, with the reason.
    references: list[ReferenceRow] = field(default_factory=list)
    references_missing: list[ReferenceMissing] = field(default_factory=list)

    def with_references(self, rows: list[LeaderboardRow], offset: int) -> list[Any]:
        """`rows` (the board's rows from `offset` on, in the board's order: not a sorted or
        searched page's) with the reference rows that fall among them, each after the team
        rows at least as good: every reference shows on exactly one page (the last one if it
        is below every row)."""
        end = offset + len(rows)
        last = end >= self.count
        lines: list[Any] = []
        pending = [
            r for r in self.references if offset <= r.position and (r.position < end or last)
        ]
        for i, row in enumerate(rows, start=offset):
            while pending and pending[0].position <= i:
                lines.append(pending.pop(0))
            lines.append(row)
        return lines + pending


INTERVAL_COLUMNS = ("ci_low", "ci_high", "interval_submission_id")

# A board's other orders (?sort= on the page): the allow-list, each with its columns. The
# default, "rank", is the board's own order; ranks stay the board's whatever the order.
BOARD_SORTS: dict[str, tuple[Any, ...]] = {
    "team": (Lower("team__name").asc(),),
    "-team": (Lower("team__name").desc(),),
    "entries": ("entries",),
    "-entries": ("-entries",),
    "last": ("last_submission_at",),
    "-last": ("-last_submission_at",),
}


def leaderboard_page(
    *,
    competition: Competition,
    split: str,
    offset: int = 0,
    limit: int | None = 100,
    sort: str = "rank",
    team_query: str = "",
    columns: list[str] | None = None,
) -> LeaderboardPage:
    """One page of a board in 4 queries (task, rows, counts, the board's statistics with
    its reference rows) whatever the number of submissions.

    Rows come in index order; a row's rank is 1 + the number of rows with a strictly
    better score, so only the page's first rank needs counting: equal scores share a rank.
    Plausible ranks are looked up in the board's sorted interval bounds (no interval is
    computed here: a worker did, services/intervals.py).

    `sort` (a BOARD_SORTS key) and `team_query` (part of a team's name, any case) reorder
    or narrow the rows without changing their ranks: `_ranks_of` counts them over the whole
    board, in the counts' query.

    `columns`: the metrics shown besides the primary one (selectors_boards.board_columns);
    given, each row's `scores` holds only those and the primary. None: the task's
    secondary metrics, and every score.
    """
    task = competition.task
    shown = list(task.secondary_metrics) if columns is None else columns
    narrow = _scores_narrower(None if columns is None else [task.primary_metric, *columns])
    metric = metric_get(task.primary_metric)
    base = LeaderboardEntry.objects.filter(
        competition=competition, split=split, task_version=task.version
    )
    # The replication badge comes with the rows (a subquery), not in a query of its own.
    replicated = (
        Replication.objects.filter(
            submission=OuterRef("submission_id"), status=Replication.Status.DONE
        )
        .order_by("-finished_at", "-pk")
        .values("outcome")[:1]
    )
    ordered = (
        base.annotate(replication=Subquery(replicated))
        .order_by("-sort_key", "submitted_at", "team_id")
        .values(
            "sort_key",
            "team_id",
            "team__name",
            "submission_id",
            "score",
            "scores",
            "submitted_at",
            "entries",
            "last_submission_at",
            "replication",
            *INTERVAL_COLUMNS,
        )
    )
    if split == "private":  # the shake-up report, kept only while the competition is final
        ordered = ordered.annotate(**_shakeup_columns(competition))
    reordered = sort in BOARD_SORTS or bool(team_query)
    if team_query:
        ordered = ordered.filter(team__name__icontains=team_query)
    if sort in BOARD_SORTS:
        ordered = ordered.order_by(*BOARD_SORTS[sort], "-sort_key", "submitted_at", "team_id")
    # The same rows in the same order, without the columns: what `_window` skips through.
    keys = base.filter(team__name__icontains=team_query) if team_query else base
    keys = keys.order_by(*ordered.query.order_by)
    window = list(_window(ordered, keys, offset, limit))
    stats = board_statistics_read(competition=competition, split=split)
    references, missing = reference_rows(stats, task, shown)
    for reference in references:
        reference.scores = narrow(reference.scores)
    counts, ranks_of = _board_counts(
        base, window, references, metric.higher_is_better, reordered, team_query
    )
    constant = next((r.score for r in references if r.kind == "constant"), None)
    intervals = [_current_interval(r) for r in window]
    ranks = plausible_ranks(stats, metric.higher_is_better, intervals)
    rows: list[LeaderboardRow] = []
    for i, r in enumerate(window):
        tied = None
        if reordered:
            rank, tied = ranks_of[r["sort_key"]]
        elif i == 0:
            rank = counts["better"] + 1
        elif r["sort_key"] != window[i - 1]["sort_key"]:
            rank = offset + i + 1
        rows.append(
            LeaderboardRow(
                rank=rank,
                team_id=r["team_id"],
                team=r["team__name"],
                submission_id=r["submission_id"],
                score=r["score"],
                scores=narrow(r["scores"]),
                secondary=[r["scores"].get(m) for m in shown],
                submitted_at=r["submitted_at"],
                entries=r["entries"],
                last_submission_at=r["last_submission_at"],
                replication=r["replication"] or "",
                ci_low=intervals[i][0],
                ci_high=intervals[i][1],
                rank_best=ranks[i][0],
                rank_worst=ranks[i][1],
                tied_with_leader=ranks[i][2],
                public_rank=r.get("shakeup_public_rank"),
                rank_change=r.get("shakeup_change"),
                beyond_sampling=r.get("shakeup_beyond"),
                normalized_score=normalized_score(metric, r["score"], constant),
                tied=tied,
            )
        )
    return LeaderboardPage(
        split=split,
        metric=metric.name,
        metric_label=metric.label,
        higher_is_better=metric.higher_is_better,
        secondary_metrics=shown,
        count=counts["total"],
        matching=counts["matching"] if team_query else None,
        rows=rows,
        bootstrap=Bootstrap(stats["seed"], stats["resamples"], stats["level"]) if stats else None,
        references=references,
        references_missing=missing,
    )


def _window(
    ordered: QuerySet, keys: QuerySet[LeaderboardEntry], offset: int, limit: int | None
) -> QuerySet:
    """`ordered[offset : offset + limit]`, the rows above the page skipped in the index
    alone: `keys` (the same rows in the same order, no column but the team, unique on a
    board) picks the page's teams in a subquery, and the join to the teams and the per-row
    subqueries run for the page's rows only. Sliced directly, PostgreSQL computes every
    skipped row's columns: 1,000 of them on page 20."""
    if limit is None:
        return ordered[offset:]
    if offset == 0:
        return ordered[:limit]
    teams = keys.values_list("team_id", flat=True)[offset : offset + limit]
    return ordered.filter(team_id__in=Subquery(teams))


def _scores_narrower(kept: list[str] | None) -> Callable[[dict], dict]:
    """What a row's scores become: all of them (None), or only the `kept` metrics."""
    if kept is None:
        return lambda scores: scores
    return lambda scores: {m: scores[m] for m in kept if m in scores}


def _board_counts(
    board: QuerySet[LeaderboardEntry],
    window: list[dict],
    references: list[ReferenceRow],
    higher_is_better: bool,
    reordered: bool,
    team_query: str,
) -> tuple[dict[str, int], dict[float, tuple[int, bool]]]:
    """The board's counts in one aggregate, each reference's `position` (the number of rows
    at least as good) counted with them: in the board's order, the rows above the page's
    first; on a sorted or searched page (`reordered`), `_ranks_of`'s rank of each key."""
    # Of a column the rank index holds (never null), not of the id: an index-only scan.
    placed = {
        f"reference_{i}": Count(
            "sort_key", filter=Q(sort_key__gte=sort_key(r.score, higher_is_better))
        )
        for i, r in enumerate(references)
    }
    ranks: dict[float, tuple[int, bool]] = {}
    if reordered:
        counts, ranks = _ranks_of(board, [r["sort_key"] for r in window], team_query, placed)
    else:
        first_key = window[0]["sort_key"] if window else float("inf")
        counts = board.aggregate(
            total=Count("sort_key"),
            better=Count("sort_key", filter=Q(sort_key__gt=first_key)),
            **placed,
        )
    for i, reference in enumerate(references):
        reference.position = counts[f"reference_{i}"]
    return counts, ranks


def _ranks_of(
    board: QuerySet[LeaderboardEntry], keys: list[float], team_query: str, extra: dict[str, Any]
) -> tuple[dict[str, int], dict[float, tuple[int, bool]]]:
    """The board's count of rows and of rows matching `team_query` (and the `extra`
    columns), and each key's board rank and whether another row shares it: one aggregate
    over the board, whatever the order shown."""
    distinct = sorted(set(keys))
    matching = Q(team__name__icontains=team_query) if team_query else Q()
    columns: dict[str, Any] = {"total": Count("pk"), "matching": Count("pk", filter=matching)}
    for i, key in enumerate(distinct):
        columns[f"better{i}"] = Count("pk", filter=Q(sort_key__gt=key))
        columns[f"equal{i}"] = Count("pk", filter=Q(sort_key=key))
    counts = board.aggregate(**columns, **extra)
    ranks = {
        key: (counts[f"better{i}"] + 1, counts[f"equal{i}"] > 1) for i, key in enumerate(distinct)
    }
    return {"total": counts["total"], "matching": counts["matching"]} | {
        name: counts[name] for name in extra
    }, ranks


def _shakeup_columns(competition: Competition) -> dict[str, Subquery]:
    """The row's shake-up (models.ShakeupEntry) as subqueries, not a query of their own."""
    mine = ShakeupEntry.objects.filter(competition=competition, team=OuterRef("team_id"))
    return {
        f"shakeup_{name}": Subquery(mine.values(column)[:1])
        for name, column in (
            ("public_rank", "public_rank"),
            ("change", "change"),
            ("beyond", "beyond_sampling"),
        )
    }


def _current_interval(row: dict) -> tuple[float | None, float | None]:
    """The row's interval, unless it belongs to a submission the row no longer shows."""
    if row["interval_submission_id"] != row["submission_id"]:
        return None, None
    return row["ci_low"], row["ci_high"]


@dataclass(frozen=True)
class ShakeupRow:
    team_id: int
    team: str
    public_rank: int | None
    public_best: int | None
    public_worst: int | None
    private_rank: int | None
    private_best: int | None
    private_worst: int | None
    change: int | None
    beyond_sampling: bool | None

    @property
    def change_label(self) -> str:
        return change_label(self.change)


def shakeup_report(*, competition: Competition) -> list[ShakeupRow]:
    """The competition's shake-up report in one query, in private rank order; empty until a
    worker computed it after finalize (services/shakeup.py), and after a reopen."""
    rows = ShakeupEntry.objects.filter(competition=competition).order_by("position")
    return [
        ShakeupRow(
            team_id=e.team_id,
            team=e.team.name,
            public_rank=e.public_rank,
            public_best=e.public_best,
            public_worst=e.public_worst,
            private_rank=e.private_rank,
            private_best=e.private_best,
            private_worst=e.private_worst,
            change=e.change,
            beyond_sampling=e.beyond_sampling,
        )
        for e in rows.select_related("team")
    ]
