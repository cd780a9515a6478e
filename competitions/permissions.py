"""The one place that decides who may see or do what. HTML views, API views, the admin
and tasks all ask these functions; each raises instead of returning a flag, so a
forgotten check cannot fall through to a success.

Outsiders get "not found" for what they may not even know exists (invite-only
competitions, other teams' submissions, the ground truth) and "forbidden" for what is
visible but not theirs to do (organizer actions on a public competition).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q
from django.utils import timezone

from competitions.models import (
    ClaimRecord,
    Competition,
    LeaderboardEntry,
    Membership,
    Submission,
    TaskFile,
)
from competitions.models.core import TaskFileQuerySet

if TYPE_CHECKING:
    from collections.abc import Iterable

    from django.contrib.auth.models import User
    from django.db.models import QuerySet


class NotFound(Exception):
    """The thing does not exist, or the user may not know that it does."""


class Forbidden(Exception):
    """The user may see the thing but not do this to it."""


AnyUser = "User | AnonymousUser"


def is_organizer(user: User | AnonymousUser, competition: Competition) -> bool:
    if not user.is_authenticated:
        return False
    # is_staff only opens the admin (organizers have it); site-wide power is is_superuser.
    if user.is_superuser:
        return True
    return competition.organizers.filter(pk=user.pk).exists()


def signed_in(user: User | AnonymousUser) -> User:
    """The signed-in user behind a request; for views whose IsAuthenticated already let only
    them through, so the type says what the permission class ensured."""
    if not user.is_authenticated:
        raise Forbidden("Sign in first.")
    return user


def can_view(user: User | AnonymousUser, competition: Competition) -> bool:
    if competition.visibility != Competition.Visibility.INVITE_ONLY:
        return True
    if not user.is_authenticated:
        return False
    return (
        is_organizer(user, competition)
        or competition.invited.filter(pk=user.pk).exists()
        or Membership.objects.filter(competition=competition, user=user).exists()
    )


def access_competition(
    user: User | AnonymousUser,
    slug: str,
    *,
    organize: bool = False,
    competitions: QuerySet[Competition] | None = None,
) -> Competition:
    """The competition named `slug` if `user` may view it (and organize it, if asked), read
    from `competitions` if given (a queryset that annotates it, say)."""
    source = Competition.objects.all() if competitions is None else competitions
    competition = source.filter(slug=slug).first()
    if competition is None or not can_view(user, competition):
        raise NotFound(f"No competition named {slug!r}.")
    if organize and not is_organizer(user, competition):
        raise Forbidden("Only this competition's organizers can do that.")
    return competition


def membership_for(user: User | AnonymousUser, competition: Competition) -> Membership | None:
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.select_related("team").filter(competition=competition, user=user).first()
    )


def access_submission(
    user: User | AnonymousUser, submission_id: int, *, team_only: bool = False
) -> Submission:
    """A submission its team's members and (unless `team_only`) the competition's organizers may see."""
    submission = (
        Submission.objects.select_related("competition", "team", "phase", "submitter")
        .filter(pk=submission_id)
        .first()
    )
    if submission is None or not user.is_authenticated:
        raise NotFound("No such submission.")
    if not team_only and is_organizer(user, submission.competition):
        return submission
    if Membership.objects.filter(team_id=submission.team_id, user=user).exists():
        return submission
    raise NotFound("No such submission.")


def task_files_visible(user: User | AnonymousUser, competition: Competition) -> TaskFileQuerySet:
    """The competition's public files `user` may know of: all of them for its organizers,
    else those released by now (a file released with a phase that has not started does not
    exist for anyone else; decided at read time, models.TaskFile.released_with)."""
    files = TaskFile.objects.filter(task__competition=competition).select_related("released_with")
    if is_organizer(user, competition):
        return files
    return files.released_at(timezone.now())


def access_task_file(user: User | AnonymousUser, slug: str, name: str) -> TaskFile:
    """A public task file of a competition the user may view; one not released yet is
    "not found" for all but the organizers, as a missing file is."""
    competition = access_competition(user, slug)
    task_file = task_files_visible(user, competition).filter(name=name).first()
    if task_file is None:
        raise NotFound(f"No file named {name!r}.")
    return task_file


def access_ground_truth(user: User | AnonymousUser, slug: str) -> Competition:
    """The ground truth is for the competition's organizers only, until they publish the
    labels (then for anyone who can see the competition); everyone else is told it is not
    there."""
    competition = Competition.objects.filter(slug=slug).first()
    if competition is None:
        raise NotFound("Not found.")
    if is_organizer(user, competition):
        return competition
    if competition.labels_published and can_view(user, competition):
        return competition
    raise NotFound("Not found.")


def access_entry(user: User | AnonymousUser, submission_id: int) -> Submission:
    """A submission whose claim (manifest, bundle) the user may see: its team and the
    organizers always; anyone who can see the competition once it is a row of a leaderboard
    they can see (the public one, or the private one after finalizing), under any task
    version: a superseded claim stays visible to whoever could see it."""
    submission = (
        Submission.objects.select_related("competition__task", "team", "phase")
        .filter(pk=submission_id)
        .first()
    )
    if submission is None or not can_view(user, submission.competition):
        raise NotFound("No such entry.")
    competition = submission.competition
    if is_organizer(user, competition) or (
        user.is_authenticated
        and Membership.objects.filter(team_id=submission.team_id, user=user).exists()
    ):
        return submission
    splits = ["public", "private"] if competition.is_finalized else ["public"]
    # On a board now, under any version, or on the public board before it changed
    # (services.claims): a cited claim keeps its URL whatever the ranked version.
    on_board = LeaderboardEntry.objects.filter(
        submission=submission, split__in=splits
    ).exists() or (
        # A disqualified entry or a banned team's left the board for cause, not
        # because something superseded it.
        not submission.is_disqualified
        and not submission.team.is_banned
        and ClaimRecord.objects.filter(submission=submission, split="public").exists()
    )
    if not on_board:
        raise NotFound("No such entry.")
    return submission


def entries_open_to_everyone(competition_ids: Iterable[int]) -> set[int]:
    """The submissions of these competitions whose entry page (access_entry) everyone may
    see, whoever asks: rows of a board everyone sees (the public one; the private one once
    finalized) of a competition that is not invite-only. A subset of what a signed-out
    reader may see (a claim kept from an earlier board is left out): what a page kept for
    every reader may link to. Whatever changes it counts the competition's board version
    up (competitions/migrations/0015_board_version.py)."""
    shown = Q(split="public") | Q(split="private", competition__finalized_at__isnull=False)
    rows = (
        LeaderboardEntry.objects.filter(shown, competition_id__in=list(competition_ids))
        .exclude(competition__visibility=Competition.Visibility.INVITE_ONLY)
        .values_list("submission_id", flat=True)
    )
    return set(rows)
