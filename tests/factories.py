"""Plain builder functions for test data (no factory library: these are few and readable)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from competitions.models import (
    Attempt,
    Competition,
    Phase,
    Score,
    Submission,
    Task,
    TaskFile,
    Team,
)
from competitions.services.leaderboard import leaderboard_refresh_team
from competitions.services.submissions import submission_create
from competitions.services.teams import competition_join

# A tiny binary task: 10 rows, positives are ids 5..9; 6 public rows, 4 private.
TRUTH_ROWS = [
    (f"id{i}", "1" if i >= 5 else "0", "Public" if i % 5 < 3 else "Private") for i in range(10)
]


def truth_csv() -> str:
    return "id,label,Usage\n" + "".join(f"{i},{y},{u}\n" for i, y, u in TRUTH_ROWS)


def predictions_csv(probabilities: dict[str, float] | None = None, default: float = 0.5) -> bytes:
    probabilities = probabilities or {}
    lines = ["id,label"] + [f"{i},{probabilities.get(i, default)}" for i, _, _ in TRUTH_ROWS]
    return ("\n".join(lines) + "\n").encode()


def perfect_predictions() -> bytes:
    return predictions_csv({i: float(y) for i, y, _ in TRUTH_ROWS})


def upload(content: bytes, name: str = "predictions.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def submitted(competition: Competition, user: User) -> Submission:
    """The user's perfect predictions, submitted through the service (queued, not scored)."""
    return submission_create(
        competition=competition, user=user, uploaded_file=upload(perfect_predictions())
    )


def make_user(username: str, *, staff: bool = False) -> User:
    return User.objects.create_user(
        username, f"{username}@example.org", "pw-" + username, is_staff=staff
    )


def make_competition(
    *,
    slug: str = "tiny",
    organizers: list[User] | None = None,
    visibility: str = Competition.Visibility.PUBLIC,
    daily_limit: int = 5,
    total_limit: int | None = None,
    primary_metric: str = "roc_auc",
    secondary_metrics: tuple[str, ...] = ("accuracy",),
) -> Competition:
    now = timezone.now()
    competition = Competition.objects.create(
        slug=slug, title=f"Competition {slug}", rules="Be nice.", visibility=visibility
    )
    competition.organizers.set(organizers or [])
    task = Task(
        competition=competition,
        task_type=Task.Type.BINARY,
        id_column="id",
        target_columns=["label"],
        classes=["0", "1"],
        primary_metric=primary_metric,
        secondary_metrics=list(secondary_metrics),
    )
    task.ground_truth.save("truth.csv", ContentFile(truth_csv().encode()), save=False)
    task.save()
    sample = TaskFile(task=task, kind=TaskFile.Kind.SAMPLE, name="sample_submission.csv")
    sample.file.save("sample_submission.csv", ContentFile(predictions_csv()), save=False)
    sample.size = sample.file.size
    sample.save()
    Phase.objects.create(
        competition=competition,
        name="Main",
        start_at=now - timedelta(days=1),
        end_at=now + timedelta(days=30),
        daily_limit=daily_limit,
        total_limit=total_limit,
    )
    return competition


def team_for(competition: Competition, username: str) -> Team:
    """A new user who joined `competition`, as their own one-person team."""
    user = make_user(username)
    return competition_join(competition=competition, user=user, accept_rules=True).team


def submission_row(team: Team, **fields: Any) -> Submission:
    """An unsaved Submission of `team`, by its first member in the first phase, holding a
    placeholder file (no upload, nothing scored); `fields` override its columns."""
    competition = team.competition
    phase = competition.phases.first()
    submitter = team.members.first()
    if phase is None or submitter is None:
        raise ValueError("The competition needs a phase and the team a member.")
    columns: dict[str, Any] = {
        "file": "submissions/fake.csv",
        "original_name": "predictions.csv",
        "sha256": "0" * 64,
        "size": 100,
        **fields,
    }
    return Submission(
        competition=competition, phase=phase, team=team, submitter=submitter, **columns
    )


def scored_submission(
    team: Team,
    scores: dict[str, dict[str, float | None]],
    *,
    created_at: datetime,
    **fields: Any,
) -> Submission:
    """A submission as the scoring service leaves it: the Submission row scored under the
    task's current version, its Score rows ({split: {metric: value}}), and the team's
    leaderboard rows refreshed. `fields` override the Submission's columns."""
    task = team.competition.task
    columns: dict[str, Any] = {
        "queued_at": created_at,
        "status": Submission.Status.SCORED,
        "task_version": task.version,
        "created_at": created_at,
        **fields,
    }
    submission = submission_row(team, **columns)
    submission.save(force_insert=True)
    Score.objects.bulk_create(
        Score(submission=submission, task_version=task.version, split=split, metric=metric, value=v)
        for split, values in scores.items()
        for metric, v in values.items()
    )
    leaderboard_refresh_team(team=team)
    return submission


def claimed(
    submission: Submission,
    *,
    started_s_ago: float = 0,
    beat_s_ago: float | None = None,
    number: int | None = None,
    worker: str = "host-a",
) -> Attempt:
    """`submission` as a worker's claim leaves it: RUNNING, with a RUNNING Attempt (the next
    number unless given) started and last beating that many seconds ago."""
    now = timezone.now()
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.RUNNING)
    if number is None:
        number = submission.scoring_attempts.count() + 1
    return Attempt.objects.create(
        submission=submission,
        number=number,
        worker=worker,
        queued_at=submission.queued_at,
        started_at=now - timedelta(seconds=started_s_ago),
        heartbeat_at=now - timedelta(seconds=started_s_ago if beat_s_ago is None else beat_s_ago),
    )


def outcomes(submission: Submission) -> list[str]:
    """The outcomes of the submission's attempts, in number order."""
    return list(submission.scoring_attempts.order_by("number").values_list("outcome", flat=True))


def interruptions(submission: Submission) -> int:
    return submission.scoring_attempts.filter(outcome=Attempt.Outcome.INTERRUPTED).count()


def latest(submission: Submission) -> Attempt:
    """The submission's latest attempt, which the test expects to exist."""
    attempt = submission.latest_attempt
    assert attempt is not None, f"submission #{submission.pk} was never claimed"
    return attempt
