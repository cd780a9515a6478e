"""Reads behind the plots and the organizer dashboard. Each runs a fixed number of queries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from competitions.files import local_copy, scratch_dir
from competitions.models import (
    Competition,
    LeaderboardEntry,
    Membership,
    Score,
    Submission,
    Team,
)
from scoring.validation import ValidationResult, check_ground_truth, validate_predictions


def board_scores(*, competition: Competition, split: str) -> list[float]:
    """Every ranked team's score on a board (one float per team, 10,000 teams is 80 kB)."""
    return list(
        LeaderboardEntry.objects.filter(
            competition=competition, split=split, task_version=competition.task.version
        ).values_list("score", flat=True)
    )


def board_position(*, competition: Competition, split: str, team_id: int) -> int | None:
    """The 0-based place of a team's row in the board's order, or None if it has no row."""
    base = LeaderboardEntry.objects.filter(
        competition=competition, split=split, task_version=competition.task.version
    )
    row = base.filter(team_id=team_id).values("sort_key", "submitted_at").first()
    if row is None:
        return None
    before = Q(sort_key__gt=row["sort_key"]) | Q(
        sort_key=row["sort_key"], submitted_at__lt=row["submitted_at"]
    )
    before |= Q(sort_key=row["sort_key"], submitted_at=row["submitted_at"], team_id__lt=team_id)
    return base.filter(before).count()


@dataclass
class Progress:
    """A team's scores over time and the current leader's, on one board and metric."""

    mine: list[tuple[datetime, float]] = field(default_factory=list)
    leader_name: str | None = None
    leader: list[tuple[datetime, float]] = field(default_factory=list)
    leader_is_mine: bool = False


def team_progress(*, competition: Competition, team: Team | None, split: str) -> Progress:
    """Ranked submissions of `team` and of the board's leader, by submission time."""
    task = competition.task
    leader = (
        LeaderboardEntry.objects.filter(
            competition=competition, split=split, task_version=task.version
        )
        .order_by("-sort_key", "submitted_at", "team_id")
        .values("team_id", "team__name")
        .first()
    )
    team_ids = {t for t in (team.pk if team else None, leader and leader["team_id"]) if t}
    if split == "public" and competition.public_board == Competition.PublicBoard.LADDER:
        # Only what the Ladder told, never a public score it held back.
        told = Submission.objects.filter(
            team_id__in=team_ids, ladder_public_score__isnull=False
        ).values_list("team_id", "created_at", "ladder_public_score")
        return _progress(told.order_by("created_at"), team, leader)
    rows = Score.objects.filter(
        submission__team_id__in=team_ids,
        submission__status=Submission.Status.SCORED,
        submission__is_disqualified=False,
        submission__is_late=False,
        task_version=task.version,
        split=split,
        metric=task.primary_metric,
        value__isnull=False,
    ).values_list("submission__team_id", "submission__created_at", "value")
    return _progress(rows.order_by("submission__created_at"), team, leader)


def _progress(
    rows: Iterable[tuple[int, datetime, float | None]],
    team: Team | None,
    leader: Mapping[str, Any] | None,
) -> Progress:
    progress = Progress()
    if leader:
        progress.leader_name = leader["team__name"]
        progress.leader_is_mine = team is not None and leader["team_id"] == team.pk
    for team_id, created_at, value in rows:
        point = (created_at, float(value or 0))  # value__isnull=False above
        if team is not None and team_id == team.pk:
            progress.mine.append(point)
        if leader and team_id == leader["team_id"]:
            progress.leader.append(point)
    return progress


def attach_primary_scores(
    submissions: list[Submission], metric: str, *, private: bool, ladder: bool = False
) -> None:
    """Set .public_score and .private_score on each submission (its own task version), in
    one query; private only when the caller may see it; on a Ladder board (`ladder`) the
    public score is the one the Ladder told the team."""
    splits = ["public", "private"] if private else ["public"]
    rows = Score.objects.filter(submission__in=submissions, metric=metric, split__in=splits)
    found: dict[tuple[int, int | None, str], float | None] = {
        (sub_id, version, split): value
        for sub_id, version, split, value in rows.values_list(
            "submission_id", "task_version", "split", "value"
        )
    }
    for s in submissions:
        public = s.ladder_public_score if ladder else found.get((s.pk, s.task_version, "public"))
        s.public_score = public  # type: ignore[attr-defined]
        s.private_score = found.get((s.pk, s.task_version, "private"))  # type: ignore[attr-defined]


def best_so_far(points: list[tuple[datetime, float]], higher: bool) -> list[tuple[datetime, float]]:
    best: list[tuple[datetime, float]] = []
    for when, value in points:
        if not best or (value > best[-1][1] if higher else value < best[-1][1]):
            best.append((when, value))
    return best


@dataclass
class Dashboard:
    participants: int
    teams: int
    submissions: int
    queued: int
    running: int
    per_day: list[tuple[date, int]]
    failures: list[tuple[str, int]]
    problem_codes: list[tuple[str, int]]

    @property
    def queue_depth(self) -> int:
        return self.queued + self.running


def dashboard(*, competition: Competition, days: int = 30, recent_failures: int = 500) -> Dashboard:
    """What an organizer checks first: who takes part, how busy scoring is, what fails."""
    subs = Submission.objects.filter(competition=competition)
    counts = subs.aggregate(
        total=Count("pk"),
        queued=Count("pk", filter=Q(status=Submission.Status.QUEUED)),
        running=Count("pk", filter=Q(status=Submission.Status.RUNNING)),
        invalid=Count("pk", filter=Q(failure=Submission.Failure.INVALID)),
        error=Count("pk", filter=Q(failure=Submission.Failure.ERROR)),
        platform=Count("pk", filter=Q(failure=Submission.Failure.PLATFORM)),
    )
    today = timezone.now().date()
    first = today - timedelta(days=days - 1)
    by_day = dict(
        subs.filter(created_at__date__gte=first)
        .order_by()  # the model's ordering would split the groups
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    # Which checks files fail most: the problem codes of the latest rejected files.
    codes: Counter[str] = Counter()
    rejected = subs.filter(failure=Submission.Failure.INVALID).order_by("-created_at")
    for problems in rejected.values_list("problems", flat=True)[:recent_failures]:
        codes.update({p.get("code", "?") for p in problems or []})
    return Dashboard(
        participants=Membership.objects.filter(competition=competition).count(),
        teams=Team.objects.filter(competition=competition).count(),
        submissions=counts["total"],
        queued=counts["queued"],
        running=counts["running"],
        per_day=[
            (first + timedelta(days=i), by_day.get(first + timedelta(days=i), 0))
            for i in range(days)
        ],
        failures=[
            (str(Submission.Failure.INVALID.label), counts["invalid"]),
            (str(Submission.Failure.ERROR.label), counts["error"]),
            (str(Submission.Failure.PLATFORM.label), counts["platform"]),
        ],
        problem_codes=codes.most_common(10),
    )


def sample_validation(*, competition: Competition) -> list[tuple[str, ValidationResult]]:
    """What validation says about each sample submission today, checked against the ground truth.

    Organizers only: it reads the ground truth.
    """
    task = competition.task
    spec = task.spec()
    with scratch_dir() as tmp:
        truth = check_ground_truth(local_copy(task.ground_truth, tmp / "truth"), spec=spec)
        if not truth.result.ok or truth.ids is None:
            return [("ground truth", truth.result)]
        results = []
        for task_file in task.files.filter(kind="sample"):
            sample = local_copy(task_file.file, tmp / f"sample-{task_file.pk}")
            result = validate_predictions(sample, spec=spec, truth_ids=truth.ids)
            results.append((task_file.name, result))
    return results
