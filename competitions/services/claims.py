"""Permanent claims: remember the public leaderboard rows before they change, so an entry
once on a board keeps its claim page, manifest and bundle for everyone who could see it
(permissions.access_entry). Private rows are not remembered: before finalizing nobody but
the team and the organizers could see them, and after it the board no longer changes."""

from __future__ import annotations

from django.db.models import QuerySet

from competitions.models import ClaimRecord, LeaderboardEntry


def claims_remember(*, entries: QuerySet[LeaderboardEntry]) -> int:
    """Record the public rows among `entries` (the rows about to change). Returns how many
    rows there were; rows already recorded are left as they are."""
    rows = list(entries.filter(split="public").values_list("submission_id", "task_version"))
    ClaimRecord.objects.bulk_create(
        [ClaimRecord(submission_id=sid, split="public", task_version=v) for sid, v in rows],
        ignore_conflicts=True,
    )
    return len(rows)
