from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from competitions.errors import ApplicationError, RulesNotAccepted
from competitions.models import Competition, Membership, Team
from competitions.services.leaderboard import leaderboard_refresh_team


@transaction.atomic
def competition_join(*, competition: Competition, user: User, accept_rules: bool) -> Membership:
    """Join as a team of one, named after the user. Joining again returns the existing membership."""
    existing = Membership.objects.filter(competition=competition, user=user).first()
    if existing is not None:
        return existing
    if not accept_rules:
        raise RulesNotAccepted("You must accept the competition's rules to join it.")
    name = _free_team_name(competition, user.get_username())
    team = Team.objects.create(competition=competition, name=name)
    try:
        with transaction.atomic():
            return Membership.objects.create(
                competition=competition, team=team, user=user, accepted_rules_at=timezone.now()
            )
    except IntegrityError:
        # A concurrent join by the same user won; keep theirs.
        team.delete()
        return Membership.objects.get(competition=competition, user=user)


def _free_team_name(competition: Competition, wanted: str) -> str:
    taken = set(
        Team.objects.filter(competition=competition, name__startswith=wanted).values_list(
            "name", flat=True
        )
    )
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted}-{n}" in taken:
        n += 1
    return f"{wanted}-{n}"


@transaction.atomic
def team_set_banned(*, team: Team, banned: bool, reason: str = "") -> Team:
    """Ban (or unban) a team: a banned team cannot submit and drops off every leaderboard."""
    if banned and not reason:
        raise ApplicationError("Say why the team is banned; the team will see the reason.")
    team.is_banned = banned
    team.banned_reason = reason if banned else ""
    team.save(update_fields=["is_banned", "banned_reason"])
    leaderboard_refresh_team(team=team)
    return team
