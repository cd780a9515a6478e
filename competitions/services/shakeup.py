"""The shake-up report: every team's move from the public to the private board.

Contract: `competition_finalize` enqueues `shakeup_task(competition_id)` through the outbox
in its transaction; the worker runs `shakeup_compute`, which first brings the boards'
intervals up to date (services/intervals.py), then, holding the competition's row lock (the
one reopen takes), replaces the competition's ShakeupEntry rows with scoring.shakeup's
moves. Nothing is computed on a page read. If the competition was reopened meanwhile it
writes nothing; `competition_reopen` deletes the report, and the next finalize computes it
again. Idempotent: a duplicate task writes the same rows.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from competitions.models import Competition, LeaderboardEntry, ShakeupEntry
from competitions.services.intervals import leaderboard_intervals_refresh
from competitions.services.outbox import enqueue
from scoring.metrics import metric_get
from scoring.shakeup import BoardRow, Move, Placing, placings, shakeup

SHAKEUP_TASK = "competitions.tasks.shakeup_task"


def shakeup_enqueue(*, competition_id: int) -> None:
    """Ask a worker for the report once the caller's transaction commits."""
    enqueue(SHAKEUP_TASK, [competition_id])


def shakeup_compute(*, competition_id: int) -> int:
    """Compute and keep the report of a finalized competition; returns its number of rows
    (0 when the competition is not finalized)."""
    leaderboard_intervals_refresh(competition_id=competition_id)
    with transaction.atomic(durable=True):
        competition = (
            Competition.objects.select_for_update(of=("self",))
            .select_related("task")
            .get(pk=competition_id)
        )
        if not competition.is_finalized:
            return 0
        higher = metric_get(competition.task.primary_metric).higher_is_better
        public = placings(_board(competition, "public"), higher_is_better=higher)
        private = placings(_board(competition, "private"), higher_is_better=higher)
        moves = shakeup(public, private)
        now = timezone.now()
        ShakeupEntry.objects.filter(competition=competition).delete()
        ShakeupEntry.objects.bulk_create(
            [_entry(competition, i, move, now) for i, move in enumerate(moves)]
        )
    return len(moves)


def shakeup_discard(*, competition: Competition) -> None:
    """Forget the report (on reopen): the boards may move until the next finalize."""
    ShakeupEntry.objects.filter(competition=competition).delete()


def _board(competition: Competition, split: str) -> list[BoardRow]:
    rows = LeaderboardEntry.objects.filter(
        competition=competition, split=split, task_version=competition.task.version
    ).values_list(
        "team_id", "sort_key", "ci_low", "ci_high", "interval_submission_id", "submission_id"
    )
    return [
        # An interval computed for another submission than the row's is no interval.
        BoardRow(team, key, low, high) if interval == shown else BoardRow(team, key)
        for team, key, low, high, interval, shown in rows
    ]


def _entry(competition: Competition, position: int, move: Move, now) -> ShakeupEntry:
    public = move.public or Placing(rank=0)
    private = move.private or Placing(rank=0)
    return ShakeupEntry(
        competition=competition,
        team_id=move.team_id,
        position=position,
        public_rank=public.rank or None,
        public_best=public.best,
        public_worst=public.worst,
        private_rank=private.rank or None,
        private_best=private.best,
        private_worst=private.worst,
        change=move.change,
        beyond_sampling=move.beyond_sampling,
        computed_at=now,
    )
