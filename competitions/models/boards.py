"""The version of what each competition's leaderboard shows (competitions/boardcache.py).

The database keeps it: triggers (migration 0013_board_version) count one up in the same
transaction as any change to what a board shows, so no code path can forget it.
"""

from __future__ import annotations

from django.db import models


class BoardVersion(models.Model):
    """One row per competition whose board changed at least once (none reads as 0).

    The column is a plain id, not a foreign key: a deleted competition's bumps may come
    after its row is gone (Django deletes children first), and an orphan row is harmless.
    """

    competition_id = models.BigIntegerField(primary_key=True)
    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"board of competition {self.competition_id}: version {self.version}"
