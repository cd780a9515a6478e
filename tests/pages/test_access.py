"""Who reaches which page: every page tried by every persona (tests/conftest.py).

Public pages answer everyone who may see the competition; an invite-only competition is
"not found" (404) for whoever may not know it exists. Participant pages need a login.
Organizer pages answer only the competition's organizers: 404 where the competition is
invisible, 403 otherwise, and a login first for anonymous visitors.
"""

from __future__ import annotations

import pytest
from django.test import Client

from competitions.models import Competition, Submission, TeamInvitation
from competitions.services.submissions import submission_create
from competitions.services.teams import competition_join, team_invite
from tests import factories

pytestmark = pytest.mark.django_db

PERSONAS = [
    "anonymous",
    "outsider",
    "participant",
    "other_participant",
    "other_organizer",
    "organizer",
]
PUBLIC_TABS = ["", "data/", "rules/", "leaderboard/", "statistics/"]
ORGANIZER_GETS = ["organize/", "organize/data/", "organize/phases/", "organize/submissions/"]
ORGANIZER_GETS += ["organize/teams/", "organize/export/"]


def _client(request, persona: str) -> Client:
    client = Client()
    if persona != "anonymous":
        if persona == "other_organizer":
            request.getfixturevalue("other_competition")
        client.force_login(request.getfixturevalue(persona))
    return client


@pytest.fixture
def submission(competition, participant) -> Submission:
    return submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )


@pytest.fixture
def secret(organizer, participant) -> Competition:
    """An invite-only competition that only its organizer and alice (a member) may see."""
    competition = factories.make_competition(
        slug="secret", organizers=[organizer], visibility=Competition.Visibility.INVITE_ONLY
    )
    competition_join(competition=competition, user=participant, accept_rules=True)
    return competition


def _is_login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_public_tabs_of_a_public_competition_answer_everyone(request, competition, persona):
    client = _client(request, persona)
    for tab in PUBLIC_TABS:
        response = client.get(f"/c/{competition.slug}/{tab}")
        assert response.status_code == 200, (persona, tab)
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("persona", PERSONAS)
def test_an_invite_only_competition_is_not_found_for_whoever_may_not_see_it(
    request, competition, secret, persona
):
    client = _client(request, persona)
    visible = persona in ("participant", "organizer")
    public = [f"/c/secret/{tab}" for tab in PUBLIC_TABS]
    private = ["/c/secret/submit/", "/c/secret/team/", "/c/secret/submissions/"]
    private += [f"/c/secret/{page}" for page in ORGANIZER_GETS]
    for url in public + private:
        response = client.get(url)
        if persona == "anonymous" and url in private:
            assert _is_login_redirect(response), url
        elif visible:
            assert response.status_code in (200, 302, 403), (persona, url)
        else:
            assert response.status_code == 404, (persona, url, response.status_code)
    assert ("Competition secret" in client.get("/").content.decode()) == visible


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_participant_pages_need_a_login_and_a_team(request, competition, persona):
    client = _client(request, persona)
    slug = competition.slug
    if persona == "anonymous":
        for page in ("submit/", "submissions/", "team/"):
            assert _is_login_redirect(client.get(f"/c/{slug}/{page}")), page
        return
    joined = persona in ("participant", "other_participant")
    assert client.get(f"/c/{slug}/submit/").status_code == 200
    assert client.get(f"/c/{slug}/team/").status_code == 200
    response = client.get(f"/c/{slug}/submissions/")
    if joined:
        assert response.status_code == 200
    else:
        assert response.status_code == 302
        assert response["Location"] == f"/c/{slug}/rules/"


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_submission_page_is_for_its_team_and_the_organizers(request, submission, persona):
    client = _client(request, persona)
    url = f"/c/{submission.competition.slug}/submissions/{submission.pk}/"
    response = client.get(url)
    if persona == "anonymous":
        assert _is_login_redirect(response)
    elif persona in ("participant", "organizer"):
        assert response.status_code == 200
        assert submission.original_name in response.content.decode()
    else:
        assert response.status_code == 404, persona


def test_a_submission_page_is_not_found_under_another_competitions_slug(
    client, submission, participant, other_competition
):
    client.force_login(participant)
    assert client.get(f"/c/other/submissions/{submission.pk}/").status_code == 404


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_team_selects_its_submissions(request, submission, persona):
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.SCORED)
    client = _client(request, persona)
    url = f"/c/{submission.competition.slug}/submissions/{submission.pk}/select/"
    response = client.post(url, {"selected": "1"})
    selected = Submission.objects.get(pk=submission.pk).is_selected
    if persona == "anonymous":
        assert _is_login_redirect(response)
    elif persona == "participant":
        assert response.status_code == 302
        assert selected
        return
    else:
        assert response.status_code == 404, persona  # organizers choose nothing for a team
    assert not selected


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_organizer_pages_answer_only_the_competitions_organizers(
    request, competition, submission, persona
):
    client = _client(request, persona)
    slug = competition.slug
    team = submission.team
    for page in ORGANIZER_GETS:
        response = client.get(f"/c/{slug}/{page}")
        if persona == "anonymous":
            assert _is_login_redirect(response), page
        elif persona == "organizer":
            assert response.status_code == 200, page
        else:
            assert response.status_code == 403, (persona, page, response.status_code)
            assert "You can't do that here" in response.content.decode()

    posts = [
        (f"/c/{slug}/organize/rescore/", {"confirm": "yes"}),
        (
            f"/c/{slug}/organize/submissions/{submission.pk}/disqualify/",
            {"disqualified": "1", "reason": "x"},
        ),
        (f"/c/{slug}/organize/submissions/{submission.pk}/rescore/", {}),
        (f"/c/{slug}/organize/teams/{team.pk}/ban/", {"banned": "1", "reason": "x"}),
        # Last: once finalized, the actions above are refused (docs/lifecycle.md).
        (f"/c/{slug}/organize/finalize/", {"confirm": "yes"}),
    ]
    for url, data in posts:
        response = client.post(url, data)
        if persona == "anonymous":
            assert _is_login_redirect(response), url
        elif persona == "organizer":
            assert response.status_code == 302, url
        else:
            assert response.status_code == 403, (persona, url)
    competition.refresh_from_db()
    submission.refresh_from_db()
    team.refresh_from_db()
    acted = persona == "organizer"
    assert competition.is_finalized == acted
    assert submission.is_disqualified == acted
    assert team.is_banned == acted


def test_organizer_actions_never_reach_another_competitions_rows(
    client, competition, submission, other_organizer, other_competition
):
    """An organizer of `other` naming alice's submission or team under their own slug."""
    client.force_login(other_organizer)
    team = submission.team
    assert (
        client.post(
            f"/c/other/organize/submissions/{submission.pk}/disqualify/",
            {"disqualified": "1", "reason": "x"},
        ).status_code
        == 404
    )
    assert client.post(f"/c/other/organize/submissions/{submission.pk}/rescore/").status_code == 404
    assert (
        client.post(
            f"/c/other/organize/teams/{team.pk}/ban/", {"banned": "1", "reason": "x"}
        ).status_code
        == 404
    )
    submission.refresh_from_db()
    team.refresh_from_db()
    assert not submission.is_disqualified
    assert not team.is_banned


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_organizer_accounts_open_the_bundle_import(request, persona):
    client = _client(request, persona)
    response = client.get("/organize/import/")
    if persona == "anonymous":
        assert _is_login_redirect(response)
    elif persona in ("organizer", "other_organizer"):
        assert response.status_code == 200
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("persona", ["outsider", "other_participant", "organizer"])
def test_a_named_invitation_is_not_found_for_anyone_else(
    request, competition, participant, outsider, persona
):
    team = participant.teams.get(competition=competition)
    invitation = team_invite(team=team, by=participant, username="charlie")
    if persona == "outsider":
        return  # charlie is the invitee: see test_teams
    client = _client(request, persona)
    url = f"/c/{competition.slug}/team/invitations/{invitation.token}/"
    assert client.get(url).status_code == 404
    assert client.post(url, {"accept_rules": "on"}).status_code == 404
    assert TeamInvitation.objects.get(pk=invitation.pk).accepted_at is None


@pytest.mark.parametrize("persona", ["outsider", "other_organizer", "organizer"])
def test_the_team_actions_need_a_team(request, competition, participant, outsider, persona):
    team = participant.teams.get(competition=competition)
    invitation = team_invite(team=team, by=participant)
    client = _client(request, persona)
    slug = competition.slug
    for url in (
        f"/c/{slug}/team/name/",
        f"/c/{slug}/team/invite/",
        f"/c/{slug}/team/leave/",
        f"/c/{slug}/team/invitations/{invitation.pk}/revoke/",
    ):
        assert client.post(url, {"name": "hijacked", "username": "charlie"}).status_code == 404
    team.refresh_from_db()
    assert team.name == "alice"
    assert TeamInvitation.objects.filter(team=team).count() == 1
