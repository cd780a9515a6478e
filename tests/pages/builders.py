"""Builders for page tests: teams with scored submissions, made as the scoring service
leaves them (Submission and Score rows, then the team's leaderboard rows refreshed)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from competitions.models import Submission, Team
from tests import factories

team_for = factories.team_for


def scored(
    team: Team,
    public: float,
    private: float | None = None,
    *,
    minutes_ago: float = 60,
    **fields,
) -> Submission:
    created = timezone.now() - timedelta(minutes=minutes_ago)
    values = {"public": public, "private": public if private is None else private}
    metric = team.competition.task.primary_metric
    return factories.scored_submission(
        team,
        {split: {metric: v, "accuracy": v / 2} for split, v in values.items()},
        created_at=created,
        **fields,
    )


def failed_invalid(team: Team, problems: list[dict]) -> Submission:
    now = timezone.now()
    submission = factories.submission_row(
        team,
        file="submissions/bad.csv",
        original_name="bad.csv",
        sha256="1" * 64,
        size=10,
        task_version=team.competition.task.version,
        status=Submission.Status.FAILED,
        failure=Submission.Failure.INVALID,
        error_message=f"The file has {len(problems)} problem(s); nothing was scored.",
        problems=problems,
        total_problems=len(problems),
        created_at=now,
        queued_at=now,
    )
    submission.save(force_insert=True)
    return submission
