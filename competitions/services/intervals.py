"""Keeps each board's uncertainty current: bootstrap intervals and rank intervals.

Contract: when a board row changes (competitions/services/leaderboard.py), the change
enqueues `leaderboard_intervals_task(competition_id)` through the outbox; the worker then
runs `leaderboard_intervals_refresh`, which computes the 95 % paired-bootstrap interval of
every row whose interval is missing or belongs to another submission (from the submission's
stored pseudo-values, scoring.influence), then the board's sorted bounds, from which a page
reads each row's rank interval and "tied with the leader" mark (scoring.statistics.RankBounds:
a lookup, not a computation). No interval is computed on a page read. Every entry of a board
uses the same resamples: the BoardStatistics row records their seed and number. Idempotent:
a redelivered or duplicate task finds nothing stale and writes the same bounds again.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from competitions.models import BoardStatistics, Competition, LeaderboardEntry, Submission
from competitions.services.outbox import enqueue
from scoring.influence import RowInfluence, influence_load
from scoring.metrics import RANGE, metric_get
from scoring.statistics import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    LEVEL,
    BootstrapPlan,
    RankBounds,
    bootstrap_interval,
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


# Intervals computed are written together, in one transaction with the bounds they move:
# readers then see one new board version, not one per row and per split (every version is
# each kept board answer rendered again, competitions/boardcache.py). A long backlog (after
# a rebuild) is still written as it goes: every FLUSH_ROWS rows or FLUSH_S seconds.
FLUSH_ROWS = 200
FLUSH_S = 2.0


@dataclass(frozen=True)
class _Interval:
    entry_id: int
    submission_id: int
    low: float | None
    high: float | None


def leaderboard_intervals_refresh(*, competition_id: int) -> int:
    """Compute the stale intervals of the board, then its rank intervals. Returns how many
    intervals were computed."""
    competition = Competition.objects.select_related("task").get(pk=competition_id)
    computed = 0
    batch: list[_Interval] = []
    started = time.monotonic()
    for split in SPLITS:
        stats = board_statistics_get(competition_id=competition_id, split=split)
        for found in _stale_intervals_compute(competition, split, stats):
            batch.append(found)
            computed += found.low is not None
            if len(batch) >= FLUSH_ROWS or time.monotonic() - started > FLUSH_S:
                _intervals_save(batch)
                batch, started = [], time.monotonic()
    with transaction.atomic():
        _intervals_save(batch)
        for split in SPLITS:
            board_ranks_refresh(competition=competition, split=split)
    return computed


def _intervals_save(batch: list[_Interval]) -> None:
    with transaction.atomic():
        for found in batch:
            # Only if the row still shows this submission: a newer one gets its own pass.
            LeaderboardEntry.objects.filter(
                pk=found.entry_id, submission_id=found.submission_id
            ).update(
                ci_low=found.low, ci_high=found.high, interval_submission_id=found.submission_id
            )


def _stale_intervals_compute(
    competition: Competition, split: str, stats: BoardStatistics
) -> Iterator[_Interval]:
    version = competition.task.version
    stale = (
        LeaderboardEntry.objects.filter(competition=competition, split=split, task_version=version)
        .filter(
            Q(interval_submission_id__isnull=True) | ~Q(interval_submission_id=F("submission_id"))
        )
        .select_related("submission__competition__task")
    )
    for entry in stale.iterator(chunk_size=200):
        found = submission_interval(submission=entry.submission, split=split, stats=stats)
        low, high = found if found is not None else (None, None)
        yield _Interval(entry.pk, entry.submission_id, low, high)


def submission_interval(
    *, submission: Submission, split: str, stats: BoardStatistics
) -> tuple[float, float] | None:
    """The 95 % paired-bootstrap interval of the submission's primary score on `split`,
    drawn with the board's resamples (`stats`), as every entry of that board gets it; None
    when there is none to show (no pseudo-values stored, or a Ladder board's public split).
    Records on `stats` the board's number of rows and task version when they change."""
    competition = submission.competition
    # A Ladder board shows public scores rounded to the noise: an interval around the exact
    # score would tell its digits back, so its public rows get none.
    if split == "public" and competition.public_board == Competition.PublicBoard.LADDER:
        return None
    found = submission_influence(submission, split)
    if found is None:
        return None
    plan = bootstrap_plan(len(found.values), stats.seed, stats.resamples)
    low, high = bootstrap_interval(
        found.values,
        plan,
        transform=found.transform,
        level=stats.level,
        within=RANGE.get(competition.task.primary_metric),
    )
    version = competition.task.version
    if stats.rows != len(found.values) or stats.task_version != version:
        BoardStatistics.objects.filter(pk=stats.pk).update(
            rows=len(found.values), task_version=version
        )
        stats.rows, stats.task_version = len(found.values), version
    return low, high


def board_ranks_refresh(*, competition: Competition, split: str) -> int:
    """Store the board's sorted interval bounds (scoring.statistics.RankBounds), from which
    every row's plausible ranks and tie-with-the-leader mark are read: one read of the rows'
    intervals and one write, whatever the board's size. Returns the number of rows with an
    interval."""
    higher = metric_get(competition.task.primary_metric).higher_is_better
    with transaction.atomic():
        # Serialises the refreshes of one board, so an older one never writes last.
        stats = (
            BoardStatistics.objects.select_for_update()
            .filter(competition=competition, split=split)
            .only("pk")
            .first()
        )
        if stats is None:
            stats = board_statistics_get(competition_id=competition.pk, split=split)
        current = LeaderboardEntry.objects.filter(
            competition=competition,
            split=split,
            task_version=competition.task.version,
            interval_submission_id=F("submission_id"),
            ci_low__isnull=False,
            ci_high__isnull=False,
        ).values_list("ci_low", "ci_high")
        bounds = np.array(list(current), dtype=np.float64).reshape(-1, 2)
        board = RankBounds.of(bounds[:, 0], bounds[:, 1], higher_is_better=higher)
        BoardStatistics.objects.filter(pk=stats.pk).update(
            bounds=board.to_bytes(), bounds_at=timezone.now()
        )
    return len(bounds)
