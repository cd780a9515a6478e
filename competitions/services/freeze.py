"""The freeze: from finalize on, nothing may move the final board until an organizer reopens
the competition (docs/lifecycle.md).

Every write that could move a board calls `competition_require_not_final` first in its
transaction, before it locks any team. On PostgreSQL the check reads the competition's row
FOR SHARE: finalize and reopen update that row, so they wait for writes in flight, and a
write that starts after a finalize committed sees it. Taking this lock before the team's
keeps the lock order one way (competition, then team), so the two cannot deadlock.
"""

from __future__ import annotations

from django.db import connection

from competitions.errors import FinalizedError
from competitions.models import Competition

# The refusals of organizers' actions that would change how the final board is scored.
VERSION_FROZEN = "The competition is finalized; its ranked version can't change."
SCORER_FROZEN = "The competition is finalized; its scorer can't change."


def competition_is_final(*, competition_id: int) -> bool:
    """Whether the competition is finalized now; holds a share lock on its row until the
    surrounding transaction ends (PostgreSQL; SQLite serialises writers anyway)."""
    lock = " FOR SHARE" if connection.vendor == "postgresql" else ""
    table = connection.ops.quote_name(Competition._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT finalized_at FROM {table} WHERE id = %s{lock}", [competition_id])
        row = cursor.fetchone()
    return row is not None and row[0] is not None


def competition_require_not_final(*, competition_id: int, refusal: str) -> None:
    """Raise FinalizedError (409) with `refusal`, a sentence, if the competition is finalized."""
    if competition_is_final(competition_id=competition_id):
        raise FinalizedError(refusal)
