"""Teams: renaming, invitations by username or link, accepting (joining, merging, moving),
leaving, and the rules that bound them (docs/teams.md)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from competitions.errors import ApplicationError, InvalidState, RulesNotAccepted, TeamBanned
from competitions.models import Competition, LeaderboardEntry, Membership, Submission, Team
from competitions.services.teams import (
    NotInvited,
    competition_join,
    invitation_accept,
    invitation_revoke,
    team_invite,
    team_leave,
    team_rename,
    team_set_banned,
)
from tests import factories
from tests.pages.builders import scored

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_team(competition, participant) -> Team:
    return participant.teams.get(competition=competition)


@pytest.fixture
def bob_team(competition, other_participant) -> Team:
    return other_participant.teams.get(competition=competition)


# --- Names ------------------------------------------------------------------------------


def test_a_member_renames_the_team_and_names_stay_unique(alice_team, bob_team, participant):
    assert team_rename(team=alice_team, user=participant, name="  The   Owls ").name == "The Owls"
    with pytest.raises(ApplicationError, match="already named"):
        team_rename(team=alice_team, user=participant, name="BOB")
    with pytest.raises(ApplicationError, match="Give the team a name"):
        team_rename(team=alice_team, user=participant, name="   ")


def test_only_members_rename_a_team(alice_team, other_participant):
    with pytest.raises(NotInvited):
        team_rename(team=alice_team, user=other_participant, name="Taken over")
    assert Team.objects.get(pk=alice_team.pk).name == "alice"


# --- Invitations ------------------------------------------------------------------------


def test_an_invitation_by_username_is_made_once(alice_team, participant, outsider):
    first = team_invite(team=alice_team, by=participant, username="charlie")
    again = team_invite(team=alice_team, by=participant, username="charlie")
    assert first.pk == again.pk
    assert first.invited_user == outsider


def test_an_invitation_names_a_real_user_outside_the_team(alice_team, participant):
    with pytest.raises(ApplicationError, match='No user is named "nobody"'):
        team_invite(team=alice_team, by=participant, username="nobody")
    with pytest.raises(ApplicationError, match="already in the team"):
        team_invite(team=alice_team, by=participant, username="alice")


def test_a_full_team_invites_nobody(competition, alice_team, participant, outsider):
    Competition.objects.filter(pk=competition.pk).update(max_team_size=1)
    alice_team.competition.refresh_from_db()
    with pytest.raises(ApplicationError, match="full"):
        team_invite(team=alice_team, by=participant, username="charlie")


def test_an_outsider_accepts_a_link_once_joining_the_competition(
    competition, alice_team, participant, outsider
):
    link = team_invite(team=alice_team, by=participant)
    with pytest.raises(RulesNotAccepted):
        invitation_accept(invitation=link, user=outsider)
    membership = invitation_accept(invitation=link, user=outsider, accept_rules=True)
    assert membership.team == alice_team
    assert membership.accepted_rules_at is not None
    link.refresh_from_db()
    assert link.invited_user == outsider  # who used the link
    other = factories.make_user("dora")
    with pytest.raises(InvalidState, match="already used"):
        invitation_accept(invitation=link, user=other, accept_rules=True)


def test_a_named_invitation_is_for_its_user_only(alice_team, participant, outsider):
    invitation = team_invite(team=alice_team, by=participant, username="charlie")
    stranger = factories.make_user("dora")
    with pytest.raises(NotInvited):
        invitation_accept(invitation=invitation, user=stranger, accept_rules=True)
    assert invitation_accept(invitation=invitation, user=outsider, accept_rules=True).team_id == (
        alice_team.pk
    )


def test_a_withdrawn_invitation_cannot_be_accepted(alice_team, participant, outsider):
    invitation = team_invite(team=alice_team, by=participant, username="charlie")
    invitation_revoke(invitation=invitation, by=participant)
    with pytest.raises(InvalidState):
        invitation_accept(invitation=invitation, user=outsider, accept_rules=True)
    with pytest.raises(InvalidState):
        invitation_revoke(invitation=invitation, by=participant)


# --- Merging and moving -----------------------------------------------------------------


def test_accepting_alone_merges_the_team_and_its_submissions_come_along(
    competition, alice_team, bob_team, participant, other_participant
):
    scored(alice_team, 0.7)
    bobs = scored(bob_team, 0.9)
    invitation = team_invite(team=alice_team, by=participant, username="bob")

    invitation_accept(invitation=invitation, user=other_participant)

    assert not Team.objects.filter(pk=bob_team.pk).exists()
    assert Submission.objects.get(pk=bobs.pk).team == alice_team
    assert set(alice_team.members.values_list("username", flat=True)) == {"alice", "bob"}
    entry = LeaderboardEntry.objects.get(team=alice_team, split="public")
    assert (entry.score, entry.entries) == (0.9, 2)
    assert LeaderboardEntry.objects.filter(competition=competition).count() == 2  # both splits


def test_a_merge_is_refused_when_the_two_teams_together_made_more_than_the_daily_limit(
    organizer, participant, other_participant
):
    competition = factories.make_competition(slug="tight", organizers=[organizer], daily_limit=2)
    alice = competition_join(competition=competition, user=participant, accept_rules=True).team
    bob = competition_join(competition=competition, user=other_participant, accept_rules=True).team
    for team in (alice, alice, bob):
        scored(team, 0.5, minutes_ago=0)
    invitation = team_invite(team=alice, by=participant, username="bob")
    with pytest.raises(ApplicationError, match="3 submissions today together"):
        invitation_accept(invitation=invitation, user=other_participant)
    assert Team.objects.filter(pk=bob.pk).exists()
    assert Submission.objects.filter(team=bob).count() == 1


def test_accepting_from_a_team_with_others_moves_only_the_user(
    competition, alice_team, bob_team, participant, other_participant, outsider
):
    competition_join(competition=competition, user=outsider, accept_rules=True)
    bob_join = team_invite(team=bob_team, by=other_participant, username="charlie")
    invitation_accept(invitation=bob_join, user=outsider)
    bobs = scored(bob_team, 0.9)
    invitation = team_invite(team=alice_team, by=participant, username="bob")

    invitation_accept(invitation=invitation, user=other_participant)

    assert Team.objects.get(pk=bob_team.pk).members.get().username == "charlie"
    assert Submission.objects.get(pk=bobs.pk).team == bob_team


def test_a_full_team_refuses_an_acceptance(competition, alice_team, participant, outsider):
    invitation = team_invite(team=alice_team, by=participant, username="charlie")
    Competition.objects.filter(pk=competition.pk).update(max_team_size=1)
    with pytest.raises(ApplicationError, match="full"):
        invitation_accept(invitation=invitation, user=outsider, accept_rules=True)
    assert not Membership.objects.filter(user=outsider).exists()


def test_teams_no_longer_change_once_finalized_or_banned(
    competition, alice_team, bob_team, participant, other_participant
):
    invitation = team_invite(team=alice_team, by=participant, username="bob")
    team_set_banned(team=bob_team, banned=True, reason="cheating")
    with pytest.raises(TeamBanned):
        invitation_accept(invitation=invitation, user=other_participant)
    Competition.objects.filter(pk=competition.pk).update(finalized_at=timezone.now())
    alice_team.competition.refresh_from_db()
    with pytest.raises(InvalidState, match="finalized"):
        team_invite(team=alice_team, by=participant)


# --- Leaving ----------------------------------------------------------------------------


def test_leaving_starts_a_team_of_one_and_the_submissions_stay(
    competition, alice_team, participant, outsider
):
    invitation_accept(
        invitation=team_invite(team=alice_team, by=participant, username="charlie"),
        user=outsider,
        accept_rules=True,
    )
    old = scored(alice_team, 0.8)
    membership = team_leave(team=alice_team, user=participant)
    assert membership.team.name == "alice-2"
    assert membership.team.members.get() == participant
    assert Submission.objects.get(pk=old.pk).team == alice_team


def test_the_last_member_and_a_banned_team_cannot_leave(alice_team, participant, outsider):
    with pytest.raises(InvalidState, match="only member"):
        team_leave(team=alice_team, user=participant)
    invitation_accept(
        invitation=team_invite(team=alice_team, by=participant, username="charlie"),
        user=outsider,
        accept_rules=True,
    )
    team_set_banned(team=alice_team, banned=True, reason="cheating")
    with pytest.raises(TeamBanned):
        team_leave(team=alice_team, user=participant)


# --- The pages --------------------------------------------------------------------------


def test_the_team_page_invites_by_name_and_by_link_and_lists_them(
    client, competition, alice_team, participant, outsider
):
    client.force_login(participant)
    slug = competition.slug
    response = client.post(f"/c/{slug}/team/invite/", {"username": "charlie"}, follow=True)
    assert "charlie is invited" in response.content.decode()
    response = client.post(f"/c/{slug}/team/invite/", {"username": ""}, follow=True)
    page = response.content.decode()
    link = alice_team.invitations.get(invited_user=None)
    assert f"http://testserver/c/{slug}/team/invitations/{link.token}/" in page
    response = client.post(f"/c/{slug}/team/invite/", {"username": "ghost"}, follow=True)
    assert "No user is named" in response.content.decode()


def test_the_invitee_sees_and_accepts_the_invitation_on_the_site(
    client, competition, alice_team, participant, outsider
):
    invitation = team_invite(team=alice_team, by=participant, username="charlie")
    client.force_login(outsider)
    team_page = client.get(f"/c/{competition.slug}/team/").content.decode()
    assert "alice invites you to the team" in team_page
    url = f"/c/{competition.slug}/team/invitations/{invitation.token}/"
    assert "Accepting joins you to the competition" in client.get(url).content.decode()
    response = client.post(url, {}, follow=True)
    assert "You must accept the competition" in response.content.decode()
    response = client.post(url, {"accept_rules": "on"})
    assert response["Location"] == f"/c/{competition.slug}/team/"
    assert Membership.objects.get(user=outsider).team == alice_team


def test_renaming_and_leaving_from_the_team_page(
    client, competition, alice_team, participant, outsider
):
    client.force_login(participant)
    slug = competition.slug
    client.post(f"/c/{slug}/team/name/", {"name": "Owls"})
    assert Team.objects.get(pk=alice_team.pk).name == "Owls"
    response = client.post(f"/c/{slug}/team/leave/", follow=True)
    assert "nothing to leave" in response.content.decode()
    invitation_accept(
        invitation=team_invite(team=alice_team, by=participant, username="charlie"),
        user=outsider,
        accept_rules=True,
    )
    response = client.post(f"/c/{slug}/team/leave/", follow=True)
    assert "You left Owls" in response.content.decode()
    assert Membership.objects.get(user=participant).team.name == "alice"
