"""Shared personas: every endpoint is tried by each of them.

- organizer: organizes `competition`
- participant: joined `competition` (team of one)
- other_participant: joined `competition` in another team
- outsider: signed in, nothing to do with `competition`
- other_organizer: organizes `other_competition` only
- submission: the participant's unscored submission to `competition`

`persona_user(request, name)` gives a persona by name (None for "anonymous") in a
parametrized test, with what makes it that persona (other_organizer's competition).
"""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from competitions.services.teams import competition_join
from tests import factories


@pytest.fixture
def organizer(db):
    return factories.make_user("orga", staff=True)


@pytest.fixture
def other_organizer(db):
    return factories.make_user("otherorga", staff=True)


@pytest.fixture
def participant(db):
    return factories.make_user("alice")


@pytest.fixture
def other_participant(db):
    return factories.make_user("bob")


@pytest.fixture
def outsider(db):
    return factories.make_user("charlie")


@pytest.fixture
def competition(organizer, participant, other_participant):
    competition = factories.make_competition(organizers=[organizer])
    competition_join(competition=competition, user=participant, accept_rules=True)
    competition_join(competition=competition, user=other_participant, accept_rules=True)
    return competition


@pytest.fixture
def other_competition(other_organizer):
    return factories.make_competition(slug="other", organizers=[other_organizer])


@pytest.fixture
def submission(competition, participant):
    return factories.submitted(competition, participant)


def persona_user(request, persona: str):
    if persona == "anonymous":
        return None
    if persona == "other_organizer":
        request.getfixturevalue("other_competition")
    return request.getfixturevalue(persona)


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def api_submit(client: APIClient, slug: str, content: bytes) -> int:
    """Upload predictions to the competition through the API (accepted: 202); the id."""
    response = client.post(
        f"/api/v1/competitions/{slug}/submissions/",
        {"file": factories.upload(content)},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


@pytest.fixture
def api():
    """`api(user)` gives a REST client authenticated by the user's token (None: anonymous)."""
    return client_for


@pytest.fixture(autouse=True, scope="session")
def submission_images_collected_at_the_end():
    """The submission images this test run loaded go when it ends: they are in its own
    deployment's repository (HELDOUT_DEPLOYMENT_ID is fresh per run), so collecting them
    never touches another run's or deployment's images on a shared engine."""
    yield
    from judging.images import images_gc

    images_gc(keep=set())  # without an engine: nothing to collect


@pytest.fixture(autouse=True)
def board_cache_emptied():
    """Each test starts with no kept leaderboard (competitions/boardcache.py): a rolled-back
    test's versions come again in the next, under ids SQLite hands out again."""
    from django.core.cache import caches

    caches["boards"].clear()
    caches["boards-local"].clear()
