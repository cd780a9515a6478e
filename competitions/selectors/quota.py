"""A team's use of a phase's submission limits (team_quota): the one count the submission
rule (services.submissions), the quota endpoint, the submit page and team merges all read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, Q

from competitions.models import Phase, Submission, Team


def next_utc_midnight(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=now.tzinfo)


@dataclass(frozen=True)
class TeamQuota:
    """What a team has used of a phase's limits; files that failed validation count only
    against their own daily allowance (HELDOUT_INVALID_SUBMISSIONS_PER_DAY)."""

    phase: Phase
    daily_used: int
    daily_limit: int
    resets_at: datetime  # the next UTC midnight, when the daily counts start again
    total_used: int
    total_limit: int | None
    invalid_used: int
    invalid_limit: int

    @property
    def remaining(self) -> int:
        """How many more submissions the team may make now (today and in the phase)."""
        left = self.daily_limit - self.daily_used
        if self.total_limit is not None:
            left = min(left, self.total_limit - self.total_used)
        if self.invalid_used >= self.invalid_limit:
            left = 0
        return max(left, 0)


def team_quota(*, team: Team | int, phase: Phase, now: datetime) -> TeamQuota:
    """The team's use of the phase's limits at `now`, in one query. The submission rule
    (services.submissions), the quota endpoint and the submit page all read this."""
    day_start = datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
    invalid = Q(failure=Submission.Failure.INVALID)
    # Invalid files and the platform's own failures never use the quota.
    uncounted = Q(failure__in=Submission.UNCOUNTED_FAILURES)
    today = Q(created_at__gte=day_start)
    counts = Submission.objects.filter(team=team, phase=phase).aggregate(
        daily=Count("pk", filter=today & ~uncounted),
        invalid=Count("pk", filter=today & invalid),
        total=Count("pk", filter=~uncounted),
    )
    return TeamQuota(
        phase=phase,
        daily_used=counts["daily"],
        daily_limit=phase.daily_limit,
        resets_at=next_utc_midnight(now),
        total_used=counts["total"],
        total_limit=phase.total_limit,
        invalid_used=counts["invalid"],
        invalid_limit=settings.HELDOUT_INVALID_SUBMISSIONS_PER_DAY,
    )
