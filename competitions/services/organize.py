"""Organizer writes from the organizer pages: phases and limits."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from competitions.errors import ApplicationError
from competitions.models import Competition, Phase
from competitions.services.freeze import competition_require_not_final


@transaction.atomic
def competition_limits_update(
    *, competition: Competition, selection_limit: int, max_team_size: int
) -> Competition:
    """Change the team limits. Existing teams larger than a new size limit are left as they are."""
    competition_require_not_final(  # the selection limit decides the private board
        competition_id=competition.pk,
        refusal="The competition is finalized: its limits can't change unless an organizer "
        "reopens it.",
    )
    if selection_limit < 1 or max_team_size < 1:
        raise ApplicationError("Limits are at least 1.")
    competition.selection_limit = selection_limit
    competition.max_team_size = max_team_size
    competition.full_clean()
    competition.save(update_fields=["selection_limit", "max_team_size"])
    return competition


@transaction.atomic
def phase_update(
    *,
    phase: Phase,
    name: str,
    start_at: datetime,
    end_at: datetime | None,
    daily_limit: int,
    total_limit: int | None,
    late_submissions_scored: bool,
) -> Phase:
    """Change a phase's dates and quotas; phases of a competition must not overlap.

    Submissions already made keep their phase; quotas apply from the next upload.
    """
    if end_at is not None and end_at <= start_at:
        raise ApplicationError("A phase must end after it starts.")
    if daily_limit < 1:
        raise ApplicationError("The daily limit is at least 1.")
    others = Phase.objects.select_for_update().filter(competition_id=phase.competition_id)
    for other in others.exclude(pk=phase.pk):
        if _overlap(start_at, end_at, other.start_at, other.end_at):
            raise ApplicationError(
                f'The phase would overlap "{other.name}"; phases must not overlap.'
            )
    phase.name = name
    phase.start_at = start_at
    phase.end_at = end_at
    phase.daily_limit = daily_limit
    phase.total_limit = total_limit
    phase.late_submissions_scored = late_submissions_scored
    phase.full_clean()
    phase.save()
    return phase


def _overlap(a_start, a_end, b_start, b_end) -> bool:
    return (b_end is None or a_start < b_end) and (a_end is None or b_start < a_end)
