"""Keeps each board's uncertainty current: bootstrap intervals and rank intervals.

Contract: when a board row changes (competitions/services/leaderboard.py), the change
enqueues `leaderboard_intervals_task(competition_id)` through the outbox; the worker then
runs `leaderboard_intervals_refresh`, which computes the 95 % paired-bootstrap interval of
every row whose interval is missing or belongs to another submission (from the submission's
stored pseudo-values, scoring.influence), then every row's rank interval and "tied with the
leader" mark (scoring.statistics). Nothing is computed on a page read. Every entry of a board
uses the same resamples: the BoardStatistics row records their seed and number. Idempotent:
a redelivered or duplicate task finds nothing stale and rewrites only changed ranks.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
from django.db import connection, transaction
from django.db.models import F, Q

from competitions.models import BoardStatistics, Competition, LeaderboardEntry, Submission
from competitions.services.outbox import enqueue
from scoring.influence import RowInfluence, influence_load
from scoring.metrics import metric_get
from scoring.statistics import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    LEVEL,
    BootstrapPlan,
    bootstrap_interval,
    rank_intervals,
    tied_with_leader,
)

log = logging.getLogger(__name__)
INTERVALS_TASK = "competitions.tasks.leaderboard_intervals_task"
SPLITS = ("public", "private")


def leaderboard_intervals_enqueue(*, competition_id: int) -> None:
    """Ask a worker to refresh the board's intervals once the caller's transaction commits."""
    enqueue(INTERVALS_TASK, [competition_id])


def board_statistics_get(*, competition_id: int, split: str) -> BoardStatistics:
    stats, _ = BoardStatistics.objects.get_or_create(
        competition_id=competition_id,
        split=split,
        defaults={"seed": DEFAULT_SEED, "resamples": DEFAULT_RESAMPLES, "level": LEVEL},
    )
    return stats


@functools.lru_cache(maxsize=2)
def bootstrap_plan(rows: int, seed: int, resamples: int) -> BootstrapPlan:
    """The plan of a board, kept between tasks: drawing it is most of an entry's cost."""
    return BootstrapPlan(rows=rows, seed=seed, resamples=resamples)


def submission_influence(submission: Submission, split: str) -> RowInfluence | None:
    """The submission's stored pseudo-values on the split for the task's primary metric, or
    None (none stored, unreadable, or for another metric)."""
    if not submission.influence:
        return None
    try:
        with submission.influence.open("rb") as handle:
            found = influence_load(handle.read()).get(split)
    except (OSError, ValueError) as exc:
        log.warning("No interval for submission %s: %s", submission.pk, exc)
        return None
    if found is None or found.metric != submission.competition.task.primary_metric:
        return None
    return found


def leaderboard_intervals_refresh(*, competition_id: int) -> int:
    """Compute the stale intervals of the board, then its rank intervals. Returns how many
    intervals were computed."""
    competition = Competition.objects.select_related("task").get(pk=competition_id)
    computed = 0
    for split in SPLITS:
        stats = board_statistics_get(competition_id=competition_id, split=split)
        computed += _stale_intervals_compute(competition, split, stats)
        board_ranks_refresh(competition=competition, split=split)
    return computed


def _stale_intervals_compute(competition: Competition, split: str, stats: BoardStatistics) -> int:
    version = competition.task.version
    stale = (
        LeaderboardEntry.objects.filter(competition=competition, split=split, task_version=version)
        .filter(
            Q(interval_submission_id__isnull=True) | ~Q(interval_submission_id=F("submission_id"))
        )
        .select_related("submission__competition__task")
    )
    computed = 0
    for entry in stale.iterator(chunk_size=200):
        found = submission_influence(entry.submission, split)
        low = high = None
        if found is not None:
            plan = bootstrap_plan(len(found.values), stats.seed, stats.resamples)
            low, high = bootstrap_interval(
                found.values, plan, transform=found.transform, level=stats.level
            )
            if stats.rows != len(found.values) or stats.task_version != version:
                BoardStatistics.objects.filter(pk=stats.pk).update(
                    rows=len(found.values), task_version=version
                )
                stats.rows, stats.task_version = len(found.values), version
            computed += 1
        # Only if the row still shows this submission: a newer one gets its own pass.
        LeaderboardEntry.objects.filter(pk=entry.pk, submission_id=entry.submission_id).update(
            ci_low=low, ci_high=high, interval_submission_id=entry.submission_id
        )
    return computed


def board_ranks_refresh(*, competition: Competition, split: str) -> int:
    """Every row's rank interval and tie-with-the-leader mark from the rows' intervals, in
    three queries whatever the board's size; writes only the rows that changed. Returns how
    many changed. Rows without an interval get no rank interval."""
    higher = metric_get(competition.task.primary_metric).higher_is_better
    with transaction.atomic():
        # Serialises the refreshes of one board, so an older one never writes last.
        BoardStatistics.objects.select_for_update().filter(
            competition=competition, split=split
        ).first()
        board = LeaderboardEntry.objects.filter(
            competition=competition, split=split, task_version=competition.task.version
        )
        rows = list(
            board.filter(ci_low__isnull=False, ci_high__isnull=False).values_list(
                "pk", "ci_low", "ci_high", "rank_best", "rank_worst", "tied_with_leader"
            )
        )
        changed = _changed_ranks(rows, higher)
        cleared = board.filter(
            Q(ci_low__isnull=True) | Q(ci_high__isnull=True),
            Q(rank_best__isnull=False) | Q(tied_with_leader=True),
        ).update(rank_best=None, rank_worst=None, tied_with_leader=False)
        _ranks_write(changed)
    return len(changed) + cleared


def _changed_ranks(rows: list[tuple], higher: bool) -> list[tuple[int, int, int, bool]]:
    if not rows:
        return []
    low = np.array([row[1] for row in rows])
    high = np.array([row[2] for row in rows])
    best, worst = rank_intervals(low, high, higher_is_better=higher)
    tied = tied_with_leader(best)
    return [
        (row[0], b, w, t)
        for row, b, w, t in zip(rows, best.tolist(), worst.tolist(), tied.tolist(), strict=True)
        if (b, w, t) != row[3:]
    ]


def _ranks_write(changed: list[tuple[int, int, int, bool]]) -> None:
    if not changed:
        return
    if connection.vendor != "postgresql":
        LeaderboardEntry.objects.bulk_update(
            [
                LeaderboardEntry(pk=pk, rank_best=b, rank_worst=w, tied_with_leader=t)
                for pk, b, w, t in changed
            ],
            ["rank_best", "rank_worst", "tied_with_leader"],
            batch_size=1000,
        )
        return
    ids, best, worst, tied = (list(column) for column in zip(*changed, strict=True))
    table = LeaderboardEntry._meta.db_table
    with connection.cursor() as cursor:
        # One statement for any number of rows: the new values as parallel arrays.
        cursor.execute(
            f"""UPDATE {table} AS e
                SET rank_best = v.best, rank_worst = v.worst, tied_with_leader = v.tied
                FROM unnest(%s::bigint[], %s::integer[], %s::integer[], %s::boolean[])
                    AS v(id, best, worst, tied)
                WHERE e.id = v.id""",
            [ids, best, worst, tied],
        )
