"""What each competition's leaderboard shows: its rows (LeaderboardEntry, one per team and
split, kept current when a submission is scored) and the version of them
(competitions/boardcache.py).

The database keeps the version: triggers (migration 0013_board_version) count one up in the same
transaction as any change to what a board shows, so no code path can forget it.
"""

from __future__ import annotations

from django.db import models

from competitions.models.core import Competition
from competitions.models.submissions import Score, Submission
from competitions.models.teams import Team


class BoardVersion(models.Model):
    """One row per competition whose board changed at least once (none reads as 0).

    The column is a plain id, not a foreign key: a deleted competition's bumps may come
    after its row is gone (Django deletes children first), and an orphan row is harmless.
    """

    competition_id = models.BigIntegerField(primary_key=True)
    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"board of competition {self.competition_id}: version {self.version}"


class LeaderboardEntry(models.Model):
    """One row per team and split, kept current when a submission is scored.

    Rank is computed at read time with a window function over these rows, so a new
    score touches one row instead of renumbering the board.
    """

    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="entries")
    split = models.CharField(max_length=8, choices=Score.Split.choices)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="entries")
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    task_version = models.PositiveIntegerField()
    score = models.FloatField()
    # score, negated when lower is better, so every board sorts descending.
    sort_key = models.FloatField()
    scores = models.JSONField(default=dict)
    submitted_at = models.DateTimeField()
    entries = models.PositiveIntegerField(default=0)
    last_submission_at = models.DateTimeField()
    # The board's uncertainty (competitions/services/intervals.py), computed by a worker when
    # the row changes, never on a read: the 95 % bootstrap interval of `score`, for the
    # submission `interval_submission_id` (a row whose submission differs is stale). Null
    # until computed, or when the scorer wrote no per-row values. The plausible ranks come
    # from these and the board's sorted bounds (BoardStatistics.bounds).
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    interval_submission_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["competition", "split", "team"], name="entry_unique"),
        ]
        indexes = [
            # selectors.leaderboard_page reads a board in this order and counts better rows.
            models.Index(
                fields=[
                    "competition",
                    "split",
                    "task_version",
                    "-sort_key",
                    "submitted_at",
                    "team",
                ],
                name="entry_rank",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team_id} on {self.split}: {self.score}"
