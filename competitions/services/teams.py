"""Joining a competition, and teams: names, invitations, merging, leaving, bans."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from competitions import rules
from competitions.errors import (
    ApplicationError,
    FinalizedError,
    InvalidState,
    RulesNotAccepted,
    TeamBanned,
    full_clean_or_refuse,
)
from competitions.models import Competition, Membership, Submission, Team, TeamInvitation
from competitions.selectors import team_quota
from competitions.services.audit import Kind, organizer_action_record
from competitions.services.freeze import competition_require_not_final
from competitions.services.leaderboard import leaderboard_refresh_team
from competitions.services.notices import invitation_notify
from competitions.services.submissions import current_phase


@transaction.atomic
def competition_join(*, competition: Competition, user: User, accept_rules: bool) -> Membership:
    """Join as a team of one, named after the user. Joining again returns the existing membership."""
    existing = Membership.objects.filter(competition=competition, user=user).first()
    if existing is not None:
        return existing
    competition_require_not_final(
        competition_id=competition.pk,
        refusal="The competition is finalized: it no longer takes new participants.",
    )
    if not accept_rules:
        raise RulesNotAccepted("You must accept the competition's rules to join it.")
    team = _team_create(competition, user.get_username())
    try:
        with transaction.atomic():
            return Membership.objects.create(
                competition=competition, team=team, user=user, accepted_rules_at=timezone.now()
            )
    except IntegrityError:
        # A concurrent join by the same user won; keep theirs.
        team.delete()
        return Membership.objects.get(competition=competition, user=user)


def _team_create(competition: Competition, wanted: str) -> Team:
    """A new team named `wanted`, or with the first free suffix."""
    for _attempt in range(3):
        try:
            with transaction.atomic():
                name = _free_team_name(competition, wanted)
                return Team.objects.create(competition=competition, name=name)
        except IntegrityError:  # a concurrent join took the name (team_unique_name_ci)
            continue
    raise InvalidState("Many people are joining at once; try again in a moment.")


def _free_team_name(competition: Competition, wanted: str) -> str:
    # Names are unique regardless of case (the team_unique_name_ci constraint).
    taken = {
        name.lower()
        for name in Team.objects.filter(
            competition=competition, name__istartswith=wanted
        ).values_list("name", flat=True)
    }
    if wanted.lower() not in taken:
        return wanted
    n = 2
    while f"{wanted}-{n}".lower() in taken:
        n += 1
    return f"{wanted}-{n}"


@transaction.atomic
def team_set_banned(*, team: Team, banned: bool, reason: str = "", by: User | None = None) -> Team:
    """Ban (or unban) a team: a banned team cannot submit and drops off every leaderboard."""
    competition_require_not_final(
        competition_id=team.competition_id,
        refusal="The competition is finalized: bans can't change unless an organizer reopens it.",
    )
    if banned and not reason:
        raise ApplicationError("Say why the team is banned; the team will see the reason.")
    team.is_banned = banned
    team.banned_reason = reason if banned else ""
    team.save(update_fields=["is_banned", "banned_reason"])
    leaderboard_refresh_team(team=team)
    organizer_action_record(
        competition_id=team.competition_id,
        by=by,
        kind=Kind.TEAM_BANNED if banned else Kind.TEAM_UNBANNED,
        target=f"team {team.name}",
        reason=reason,
    )
    return team


# --- Teams: name, invitations, merging, leaving -------------------------------------------
#
# The rules (docs/teams.md):
# - a user is in exactly one team per competition (Membership's unique constraint);
# - a team has at most Competition.max_team_size members;
# - accepting an invitation while alone in a team merges that team in: its submissions
#   move along, and the merge is refused if, in the current phase, the two teams'
#   counted submissions of today (or of the whole phase) together exceed the limits;
# - accepting while in a team with others leaves that team (its submissions stay there);
# - leaving a team starts a new team of one; the last member cannot leave;
# - nothing changes once the competition is finalized, nor for a banned team.


class NotInvited(ApplicationError):
    status = 403
    code = "not_invited"


TEAMS_FROZEN = "The competition is finalized; teams can no longer change."


def _not_final(competition_id: int) -> None:
    """The freeze check; each transaction below makes it before it locks a team."""
    competition_require_not_final(competition_id=competition_id, refusal=TEAMS_FROZEN)


def _unchangeable(team: Team) -> None:
    if team.competition.is_finalized:
        raise FinalizedError(TEAMS_FROZEN)
    if team.is_banned:
        raise TeamBanned(rules.team_banned(team.name))


def _require_member(team: Team, user: User) -> None:
    if not Membership.objects.filter(team=team, user=user).exists():
        raise NotInvited("Only the team's members can do that.")


@transaction.atomic
def team_rename(*, team: Team, user: User, name: str) -> Team:
    """A member renames their team; refused after finalize (the name is on the final
    board) and for a banned team."""
    _require_member(team, user)
    _not_final(team.competition_id)
    team = Team.objects.select_for_update().select_related("competition").get(pk=team.pk)
    _unchangeable(team)
    return _name_set(team, name)


@transaction.atomic
def team_rename_by_organizer(*, team: Team, name: str) -> Team:
    """An organizer renames a team (the admin), banned or not: moderation of names.
    Refused after finalize, like every change to the final board."""
    _not_final(team.competition_id)
    team = Team.objects.select_for_update().get(pk=team.pk)
    return _name_set(team, name)


def _name_set(team: Team, name: str) -> Team:
    if len(rules.team_name_normal(name)) > rules.TEAM_NAME_MAX:
        raise ApplicationError(rules.TEAM_NAME_TOO_LONG)
    team.name = name
    full_clean_or_refuse(team)  # Team.clean: the name's rules, "Carol" and "carol" alike
    try:
        with transaction.atomic():
            team.save(update_fields=["name"])
    except IntegrityError:  # a concurrent rename took the name (team_unique_name_ci)
        raise ApplicationError(rules.team_name_taken(team.name)) from None
    return team


@transaction.atomic
def team_invite(*, team: Team, by: User, username: str = "") -> TeamInvitation:
    """Invite a user by name, or (no name) make a one-use link for anyone who can see the competition."""
    _require_member(team, by)
    _not_final(team.competition_id)
    _unchangeable(team)
    if team.memberships.count() >= team.competition.max_team_size:
        raise ApplicationError(
            f"The team is full: at most {team.competition.max_team_size} members."
        )
    invited = None
    if username:
        invited = User.objects.filter(username=username.strip()).first()
        if invited is None:
            raise ApplicationError(f'No user is named "{username.strip()}".')
        if Membership.objects.filter(team=team, user=invited).exists():
            raise ApplicationError(f"{invited.get_username()} is already in the team.")
        pending = TeamInvitation.objects.filter(
            team=team, invited_user=invited, accepted_at__isnull=True, revoked_at__isnull=True
        ).first()
        if pending is not None:
            return pending
    invitation = TeamInvitation.objects.create(team=team, invited_user=invited, created_by=by)
    invitation_notify(invitation=invitation)  # the invited user's bell and e-mail
    return invitation


def invitation_revoke(*, invitation: TeamInvitation, by: User) -> TeamInvitation:
    _require_member(invitation.team, by)
    revoked = TeamInvitation.objects.filter(
        pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    if not revoked:
        raise InvalidState("The invitation was already used or withdrawn.")
    invitation.refresh_from_db()
    return invitation


@transaction.atomic
def invitation_accept(
    *, invitation: TeamInvitation, user: User, accept_rules: bool = False
) -> Membership:
    """Join the invitation's team (see the rules above). Joins the competition if needed."""
    invitation = TeamInvitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at or invitation.revoked_at:
        raise InvalidState("This invitation was already used or withdrawn.")
    if invitation.invited_user_id not in (None, user.pk):
        raise NotInvited("This invitation is for another user.")
    _not_final(invitation.team.competition_id)
    competition = Competition.objects.get(pk=invitation.team.competition_id)
    membership = Membership.objects.filter(competition=competition, user=user).first()
    # Lock both teams in id order, so two merges into each other can't deadlock.
    team_ids = sorted({invitation.team_id, *([membership.team_id] if membership else [])})
    locked = {t.pk: t for t in Team.objects.select_for_update().filter(pk__in=team_ids)}
    target = locked[invitation.team_id]
    target.competition = competition
    _unchangeable(target)
    if membership is not None and membership.team_id == target.pk:
        raise InvalidState("You are already in this team.")
    if target.memberships.count() >= competition.max_team_size:
        raise ApplicationError(f"The team is full: at most {competition.max_team_size} members.")
    now = timezone.now()
    if membership is None:
        if not accept_rules:
            raise RulesNotAccepted("You must accept the competition's rules to join it.")
        membership = Membership.objects.create(
            competition=competition, team=target, user=user, accepted_rules_at=now
        )
    else:
        _move(membership, locked[membership.team_id], target, now)
    invitation.accepted_at = now
    invitation.invited_user = user
    invitation.save(update_fields=["accepted_at", "invited_user"])
    leaderboard_refresh_team(team=target)
    return membership


def _move(membership: Membership, old: Team, target: Team, now) -> None:
    old.competition = target.competition
    _unchangeable(old)
    alone = old.memberships.count() == 1
    if alone:
        _check_merge_quota(old, target, now)
        moving = Submission.objects.filter(team=old)
        selected = Submission.objects.filter(team__in=[old, target], is_selected=True).count()
        if selected > target.competition.selection_limit:
            # Both teams chose; the combined team chooses again.
            moving.update(is_selected=False)
        moving.update(team=target)
    membership.team = target
    membership.save(update_fields=["team"])
    if alone:
        old.delete()  # its leaderboard rows and invitations go with it
    else:
        leaderboard_refresh_team(team=old)


def _check_merge_quota(old: Team, target: Team, now) -> None:
    found = current_phase(target.competition, now)
    if found is None:
        return
    phase, _late = found
    # The quota rule's own counts (selectors.team_quota), for the two teams together.
    quotas = [team_quota(team=team, phase=phase, now=now) for team in (old, target)]
    today = sum(q.daily_used for q in quotas)
    total = sum(q.total_used for q in quotas)
    if today > phase.daily_limit:
        raise ApplicationError(
            f"The two teams made {today} submissions today together, more than the daily "
            f"limit of {phase.daily_limit}; merge tomorrow (UTC)."
        )
    if phase.total_limit is not None and total > phase.total_limit:
        raise ApplicationError(
            f"The two teams made more submissions together than the phase allows "
            f"({phase.total_limit}); they cannot merge."
        )


@transaction.atomic
def team_leave(*, team: Team, user: User) -> Membership:
    """Leave the team for a new team of one; the submissions stay with the team."""
    _not_final(team.competition_id)
    team = Team.objects.select_for_update().select_related("competition").get(pk=team.pk)
    membership = Membership.objects.filter(team=team, user=user).first()
    if membership is None:
        raise NotInvited("You are not in this team.")
    _unchangeable(team)
    if team.memberships.count() == 1:
        raise InvalidState("You are the team's only member, so there is nothing to leave.")
    new_team = _team_create(team.competition, user.get_username())
    membership.team = new_team
    membership.save(update_fields=["team"])
    leaderboard_refresh_team(team=team)
    return membership
