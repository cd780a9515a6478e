"""Reads for the pages people scan: the competition cards' counts, and a signed-in team
member's standing on a board: "your best" (the team's row, with its rank) and "your last"
(the team's latest submission, with its score on that board), above the leaderboard.

The leaderboard page is kept per board version (competitions/boardcache.py), and a team's
latest submission can change without the board changing (queued, failed, late): so the
membership is read with the id and status of the team's latest submission, in the
membership's own query, and the page's key holds them (`last_submission_token`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from competitions.models import (
    Competition,
    LeaderboardEntry,
    Membership,
    Score,
    Submission,
    Team,
)


def with_card_counts(competitions: QuerySet[Competition]) -> QuerySet[Competition]:
    """`competitions` with `team_count` and `submission_count` (cancelled ones aside), each
    a subquery of the same statement: a joined count would pair every team with every
    submission."""

    def counted(queryset: QuerySet) -> Coalesce:
        counts = (
            queryset.filter(competition_id=OuterRef("pk"))
            .order_by()
            .values("competition_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))

    return competitions.annotate(
        team_count=counted(Team.objects.all()),
        submission_count=counted(Submission.objects.exclude(status=Submission.Status.CANCELLED)),
    )


def membership_with_last_submission(
    user: User | AnonymousUser, competition: Competition
) -> Membership | None:
    """The user's membership (with its team) and, as `last_submission_id` and
    `last_submission_status`, the team's latest submission: one query, none anonymous."""
    if not user.is_authenticated:
        return None
    latest = Submission.objects.filter(team_id=OuterRef("team_id")).order_by("-created_at", "-pk")
    return (
        Membership.objects.select_related("team")
        .filter(competition=competition, user=user)
        .annotate(
            last_submission_id=Subquery(latest.values("pk")[:1]),
            last_submission_status=Subquery(latest.values("status")[:1]),
        )
        .first()
    )


def last_submission_token(membership: Membership | None) -> str:
    """What the standing depends on beyond the board's version ("" without a team)."""
    if membership is None:
        return ""
    last = getattr(membership, "last_submission_id", None)
    return f"{last}:{getattr(membership, 'last_submission_status', '')}"


@dataclass(frozen=True)
class Best:
    submission_id: int
    score: float
    rank: int


@dataclass(frozen=True)
class Last:
    submission_id: int
    created_at: datetime
    status: str
    status_label: str
    score: float | None  # on the board's split and metric; None unscored or not shown
    is_late: bool


@dataclass(frozen=True)
class Standing:
    best: Best | None  # None: the team is not on this board
    last: Last | None  # None: the team has not submitted


def team_standing(*, competition: Competition, membership: Membership, split: str) -> Standing:
    """The team's best (its board row and rank) and last submission on board `split`: one
    query, none before the team's first submission. On a Ladder board the public score of
    the last submission is the one the Ladder told (selectors.ladder_masked), if any."""
    last_id = getattr(membership, "last_submission_id", None)
    if last_id is None:  # no submission, so no board row either
        return Standing(None, None)
    task = competition.task
    board = LeaderboardEntry.objects.filter(
        competition=competition, split=split, task_version=task.version
    )
    row = board.filter(team_id=membership.team_id)
    better = (
        board.filter(sort_key__gt=Subquery(row.values("sort_key")[:1]))
        .order_by()
        .values("competition_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    score = Score.objects.filter(
        submission=OuterRef("pk"),
        task_version=OuterRef("task_version"),
        split=split,
        metric=task.primary_metric,
    ).values("value")[:1]
    submission = (
        Submission.objects.filter(pk=last_id)
        .annotate(
            score=Subquery(score),
            best_id=Subquery(row.values("submission_id")[:1]),
            best_score=Subquery(row.values("score")[:1]),
            better=Coalesce(Subquery(better, output_field=IntegerField()), Value(0)),
        )
        .only("pk", "created_at", "status", "is_late", "ladder_public_score", "task_version")
        .first()
    )
    if submission is None:  # deleted since the membership was read
        return Standing(None, None)
    found = submission.__dict__
    best = None
    if found["best_id"] is not None:
        best = Best(found["best_id"], found["best_score"], found["better"] + 1)
    value = found["score"]
    if split == "public" and competition.public_board == Competition.PublicBoard.LADDER:
        value = submission.ladder_public_score
    if submission.status != Submission.Status.SCORED or submission.task_version != task.version:
        value = None
    last = Last(
        submission.pk,
        submission.created_at,
        submission.status,
        submission.get_status_display(),
        value,
        submission.is_late,
    )
    return Standing(best, last)
