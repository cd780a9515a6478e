"""Builders for page tests: teams with scored submissions, made as the scoring service
leaves them (Submission and Score rows, then the team's leaderboard rows refreshed)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from competitions.models import Score, Submission, Team
from competitions.services.leaderboard import leaderboard_refresh_team
from competitions.services.teams import competition_join
from tests import factories


def team_for(competition, username: str) -> Team:
    user = factories.make_user(username)
    return competition_join(competition=competition, user=user, accept_rules=True).team


def scored(
    team: Team,
    public: float,
    private: float | None = None,
    *,
    minutes_ago: float = 60,
    **fields,
) -> Submission:
    competition = team.competition
    task = competition.task
    created = timezone.now() - timedelta(minutes=minutes_ago)
    submission = Submission.objects.create(
        competition=competition,
        phase=competition.phases.first(),
        team=team,
        submitter=team.members.first(),
        file="submissions/fake.csv",
        original_name="predictions.csv",
        sha256="0" * 64,
        size=100,
        task_version=task.version,
        created_at=created,
        queued_at=created,
        finished_at=created,
        **{"status": Submission.Status.SCORED, **fields},
    )
    values = {"public": public, "private": public if private is None else private}
    Score.objects.bulk_create(
        Score(submission=submission, task_version=task.version, split=split, metric=metric, value=v)
        for split, value in values.items()
        for metric, v in ((task.primary_metric, value), ("accuracy", value / 2))
    )
    leaderboard_refresh_team(team=team)
    return submission


def failed_invalid(team: Team, problems: list[dict]) -> Submission:
    competition = team.competition
    now = timezone.now()
    return Submission.objects.create(
        competition=competition,
        phase=competition.phases.first(),
        team=team,
        submitter=team.members.first(),
        file="submissions/bad.csv",
        original_name="bad.csv",
        sha256="1" * 64,
        size=10,
        task_version=competition.task.version,
        status=Submission.Status.FAILED,
        failure=Submission.Failure.INVALID,
        error_message=f"The file has {len(problems)} problem(s); nothing was scored.",
        problems=problems,
        total_problems=len(problems),
        created_at=now,
        queued_at=now,
        finished_at=now,
    )
