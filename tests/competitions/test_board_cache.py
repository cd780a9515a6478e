"""Leaderboard answers kept per board version (competitions/boardcache.py): the ETag moves
with every change to what a board shows, a matching If-None-Match is answered 304, a kept
answer costs a pinned handful of queries, and no viewer is ever given another's view.

The versions come from the database's triggers (migrations 0015_board_version, 0018, 0024 and
0026, which makes SQLite's again), so these tests change boards through the services, and by
hand where a row is all that changes. Run on SQLite too (`sqlite_too`, .ci/run).
"""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.db import connection, transaction
from django.db.models import F
from django.test import Client
from django.utils import timezone

from competitions import boardcache
from competitions.models import (
    BoardVersion,
    Competition,
    LeaderboardEntry,
    Replication,
    Submission,
    Team,
)
from competitions.selectors_boards import board_phase_key, with_board_phase
from competitions.services.intervals import board_ranks_refresh
from competitions.services.leaderboard import leaderboard_rebuild
from competitions.services.lifecycle import competition_finalize, competition_reopen
from competitions.services.teams import competition_join, team_rename, team_set_banned
from competitions.services.versions import task_version_activate, task_version_create
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]

T0 = timezone.now() - timedelta(hours=3)


def _score(team: Team, value: float, minutes: float = 0) -> Submission:
    metric = team.competition.task.primary_metric
    return factories.scored_submission(
        team,
        {split: {metric: value, "accuracy": 0.5} for split in ("public", "private")},
        created_at=T0 + timedelta(minutes=minutes),
        original_name="fake.csv",
        size=1,
    )


@pytest.fixture
def board(competition, participant, other_participant):
    """The competition with a score for each participant's team."""
    for n, user in enumerate((participant, other_participant)):
        _score(user.teams.get(competition=competition), 0.6 + n / 10, minutes=n)
    return competition


def _with_phase(competition: Competition) -> Competition:
    """The competition as the board views read it: with the phase its board follows."""
    return with_board_phase(Competition.objects.filter(pk=competition.pk), timezone.now()).get()


def _api_url(competition: Competition) -> str:
    return f"/api/v1/competitions/{competition.slug}/leaderboard/"


def _page_url(competition: Competition) -> str:
    return f"/c/{competition.slug}/leaderboard/"


def _etag(response) -> str:
    assert response.status_code == 200, response.content[:300]
    return response["ETag"]


# --- ETag and 304 -------------------------------------------------------------------------


def test_a_matching_if_none_match_is_answered_304_without_any_board_query(
    api, board, django_assert_num_queries
):
    etag = _etag(api(None).get(_api_url(board)))

    # The competition with its board version: nothing of the board itself.
    with django_assert_num_queries(1):
        response = api(None).get(_api_url(board), HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response["ETag"] == etag
    assert response.content == b""
    assert api(None).get(_api_url(board), HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_the_etag_is_strong_and_a_weak_copy_of_it_matches_too(api, board):
    etag = _etag(api(None).get(_api_url(board)))

    assert etag.startswith('"')
    assert not etag.startswith("W/")
    for given in (f"W/{etag}", f'"x", {etag}', "*"):
        response = api(None).get(_api_url(board), HTTP_IF_NONE_MATCH=given)
        assert response.status_code == 304, given


def test_the_etag_changes_when_a_score_lands_and_the_new_score_is_shown(api, board, participant):
    before = api(None).get(_api_url(board))
    team = participant.teams.get(competition=board)

    _score(team, 0.99, minutes=30)

    after = api(None).get(_api_url(board), HTTP_IF_NONE_MATCH=_etag(before))
    assert after.status_code == 200
    assert _etag(after) != before["ETag"]
    assert after.json()["results"][0]["score"] == 0.99


def test_a_row_written_again_unchanged_keeps_the_etag(api, board):
    # update_or_create writes a team's rows even when nothing in them changed.
    etag = _etag(api(None).get(_api_url(board)))
    version = BoardVersion.objects.get(competition_id=board.pk).version

    LeaderboardEntry.objects.filter(competition=board).update(score=F("score"))

    assert BoardVersion.objects.get(competition_id=board.pk).version == version
    assert api(None).get(_api_url(board), HTTP_IF_NONE_MATCH=etag).status_code == 304


def _finalize(competition, organizer):
    competition_finalize(competition=competition, by=organizer)


def _version(competition) -> str | None:
    return boardcache.board_token(slug=competition.slug)


CHANGES = {
    "finalize": _finalize,
    "visibility": lambda c, o: Competition.objects.filter(pk=c.pk).update(
        visibility=Competition.Visibility.UNLISTED
    ),
    "team rename": lambda c, o: team_rename(
        team=c.teams.first(), user=c.teams.first().members.first(), name="Renamed"
    ),
    "ban": lambda c, o: team_set_banned(team=c.teams.first(), banned=True, reason="cheating"),
    "team deleted": lambda c, o: c.teams.first().delete(),
    "metric": lambda c, o: (
        type(c.task).objects.filter(pk=c.task.pk).update(secondary_metrics=["log_loss"])
    ),
    "rank intervals": lambda c, o: board_ranks_refresh(competition=c, split="public"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_the_etag_changes_with_whatever_changes_what_the_board_shows(
    api, client, board, organizer, change
):
    json_etag = _etag(api(None).get(_api_url(board)))
    csv_etag = _etag(api(None).get(_api_url(board), {"format": "csv"}))
    page_etag = _etag(client.get(_page_url(board)))

    CHANGES[change](board, organizer)

    board.refresh_from_db()
    assert _etag(api(None).get(_api_url(board))) != json_etag
    assert _etag(api(None).get(_api_url(board), {"format": "csv"})) != csv_etag
    assert _etag(client.get(_page_url(board))) != page_etag


def test_reopening_changes_the_etag_of_the_final_board(api, board, organizer):
    competition_finalize(competition=board, by=organizer)
    final = _etag(api(None).get(_api_url(board), {"split": "private"}))

    competition_reopen(competition=board, by=organizer, reason="A leak in the test set.")

    # Hidden again from everyone but the organizers, and theirs is a new version.
    assert api(None).get(_api_url(board), {"split": "private"}).status_code == 403
    response = api(organizer).get(_api_url(board), {"split": "private"}, HTTP_IF_NONE_MATCH=final)
    assert _etag(response) != final
    assert response.json()["reopened"]["reason"] == "A leak in the test set."


def test_a_version_switch_changes_the_etag_even_of_an_empty_board(api, competition):
    etag = _etag(api(None).get(_api_url(competition)))
    task = competition.task
    version = task_version_create(task=task, note="v2")

    task_version_activate(task=task, number=version.number)

    response = api(None).get(_api_url(competition), HTTP_IF_NONE_MATCH=etag)
    assert _etag(response) != etag
    assert response.json()["task_version"] == 2


def test_a_finished_replication_changes_the_etag_and_its_badge_shows(api, board, participant):
    etag = _etag(api(None).get(_api_url(board)))
    entry = LeaderboardEntry.objects.get(team__memberships__user=participant, split="public")
    replication = Replication.objects.create(submission_id=entry.submission_id)
    # Queued and running replications show nothing: the board keeps its version.
    assert api(None).get(_api_url(board), HTTP_IF_NONE_MATCH=etag).status_code == 304

    Replication.objects.filter(pk=replication.pk).update(
        status=Replication.Status.DONE,
        outcome=Replication.Outcome.REPRODUCED,
        finished_at=timezone.now(),
    )

    response = api(None).get(_api_url(board), HTTP_IF_NONE_MATCH=etag)
    assert _etag(response) != etag
    rows = {r["submission_id"]: r["replication"] for r in response.json()["results"]}
    assert rows[entry.submission_id] == "reproduced"


# --- The database keeps the version ------------------------------------------------------


def _triggers_on_the_database() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return {name for (name,) in cursor.fetchall()}


def test_every_board_version_trigger_the_migrations_make_is_on_the_database():
    # SQLite rebuilds a table to add a column with a default, and drops its triggers then.
    made = importlib.import_module("competitions.migrations.0026_board_version_triggers_sqlite")

    missing = set(made.BOARD_TRIGGERS_SQLITE) - _triggers_on_the_database()

    assert len(made.BOARD_TRIGGERS_SQLITE) == 17
    assert not missing


def test_the_version_moves_in_the_transaction_that_changes_the_board(board, participant):
    before = _version(board)
    team = participant.teams.get(competition=board)

    inside = None
    try:
        with transaction.atomic():
            Team.objects.filter(pk=team.pk).update(name="Not kept")
            inside = _version(board)
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass

    assert inside != before  # seen inside the transaction...
    assert _version(board) == before  # ...and gone with it


def test_a_rebuild_moves_the_version_once_per_statement_whatever_the_number_of_rows(board):
    for n in range(20):
        _score(factories.team_for(board, f"extra{n}"), n / 20, minutes=n)
    before = BoardVersion.objects.get(competition_id=board.pk).version

    leaderboard_rebuild(competition=board)

    after = BoardVersion.objects.get(competition_id=board.pk).version
    if connection.vendor == "postgresql":
        assert after == before + 2  # one for the delete, one for the insert
    else:  # SQLite has row triggers only
        assert after > before


def test_a_change_to_one_board_leaves_the_others_versions_alone(board, other_competition):
    _score(factories.team_for(other_competition, "dave"), 0.5)
    other = _version(other_competition)

    _score(board.teams.first(), 0.9, minutes=60)

    assert _version(other_competition) == other


# --- Cost of a kept answer ---------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"format": "csv"}, {"page": 2, "page_size": 1}])
def test_a_kept_api_answer_costs_one_query_for_anyone(
    api, board, django_assert_num_queries, params
):
    first = api(None).get(_api_url(board), params)
    assert first.status_code == 200

    with django_assert_num_queries(1):  # the competition with its board version
        again = api(None).get(_api_url(board), params)
    assert again.content == first.content
    assert again["Content-Type"] == first["Content-Type"]


def test_a_kept_page_costs_one_query_anonymous_and_six_signed_in(
    client, board, participant, django_assert_num_queries
):
    first = client.get(_page_url(board))
    with django_assert_num_queries(1):  # the competition with its board version
        assert client.get(_page_url(board)).content == first.content

    client.force_login(participant)
    client.get(_page_url(board))  # sets the CSRF cookie its log-out form's token comes from
    first = client.get(_page_url(board))
    # session, user, competition, membership, organizer check, the bell's unread count
    with django_assert_num_queries(6):
        assert client.get(_page_url(board)).content == first.content


def test_a_process_answers_what_it_kept_itself_without_asking_the_shared_cache(
    api, board, django_assert_num_queries
):
    first = api(None).get(_api_url(board))
    caches["boards"].clear()  # as if the shared cache had lost it: this process has its own

    with django_assert_num_queries(1):
        again = api(None).get(_api_url(board))
    assert again.content == first.content
    assert again["ETag"] == first["ETag"]


def test_while_a_version_renders_the_others_get_the_previous_one(api, board, participant):
    old = api(None).get(_api_url(board))
    _score(participant.teams.get(competition=board), 0.99, minutes=30)
    key = boardcache.BoardKey(
        token=_version(board),
        competition=board,
        viewer="public",
        fmt="json",
        params=("http://testserver" + _api_url(board), board_phase_key(_with_phase(board))),
        shared=True,
    )
    caches["boards"].add(key.name + ":rendering", "another request")

    meanwhile = api(None).get(_api_url(board))
    assert meanwhile.content == old.content
    assert meanwhile["ETag"] == old["ETag"]  # so the next request asks again

    caches["boards"].delete(key.name + ":rendering")
    fresh = api(None).get(_api_url(board))
    assert fresh["ETag"] != old["ETag"]
    assert fresh.json()["results"][0]["score"] == 0.99


def test_with_the_cache_off_every_read_renders_and_carries_no_etag(
    api, board, settings, django_assert_num_queries
):
    settings.HELDOUT_BOARD_CACHE = False
    api(None).get(_api_url(board))

    # the competition (task, version), rows, counts, the board's statistics
    with django_assert_num_queries(4):
        response = api(None).get(_api_url(board), HTTP_IF_NONE_MATCH="*")
    assert response.status_code == 200
    assert "ETag" not in response


# --- Who sees what ----------------------------------------------------------------------


def test_the_private_board_kept_for_the_organizers_is_no_one_elses(request, api, board, organizer):
    response = api(organizer).get(_api_url(board), {"split": "private"})
    etag = _etag(response)
    assert response["Cache-Control"] == "private, no-cache"

    for persona in ("anonymous", "outsider", "other_participant", "other_organizer"):
        user = _persona(request, persona)
        for given in ({}, {"HTTP_IF_NONE_MATCH": etag}):
            refused = api(user).get(_api_url(board), {"split": "private"}, **given)
            assert refused.status_code == 403, (persona, given)
            refused = api(user).get(_api_url(board), {"split": "private", "format": "csv"}, **given)
            assert refused.status_code == 403, (persona, given)


def test_the_page_an_organizer_or_a_participant_was_given_is_not_anyone_elses(
    request, client, board, organizer, participant
):
    mine = {}
    for user in (organizer, participant):
        client.force_login(user)
        mine[user.username] = client.get(_page_url(board), {"split": "private"})
        assert mine[user.username]["Cache-Control"] == "private, no-cache"
    assert "Organize" in mine[organizer.username].content.decode()
    assert "your team" in mine[participant.username].content.decode()

    for persona in ("anonymous", "outsider", "other_participant", "other_organizer"):
        user = _persona(request, persona)
        viewer = Client()
        if user is not None:
            viewer.force_login(user)
        for given in mine.values():
            page = viewer.get(
                _page_url(board), {"split": "private"}, HTTP_IF_NONE_MATCH=given["ETag"]
            )
            assert page.status_code == 200, persona
            assert page["ETag"] not in {m["ETag"] for m in mine.values()}, persona
            html = page.content.decode()
            assert "The public leaderboard" in html, persona
            assert 'aria-label="Leaderboard split"' not in html, persona
            assert "Organize" not in html, persona
            assert participant.username not in html.split("<main", 1)[0], persona


def test_an_invite_only_board_stays_hidden_whatever_was_kept(request, api, client, organizer):
    hidden = factories.make_competition(
        slug="hidden", organizers=[organizer], visibility=Competition.Visibility.INVITE_ONLY
    )
    member = factories.make_user("member")
    hidden.invited.add(member)
    competition_join(competition=hidden, user=member, accept_rules=True)
    _score(member.teams.get(competition=hidden), 0.7)
    response = api(member).get(_api_url(hidden))
    etag = _etag(response)
    assert response["Cache-Control"] == "private, no-cache"
    client.force_login(member)
    page_etag = _etag(client.get(_page_url(hidden)))

    for persona in ("anonymous", "outsider", "participant", "other_organizer"):
        user = _persona(request, persona)
        assert api(user).get(_api_url(hidden), HTTP_IF_NONE_MATCH=etag).status_code == 404
        viewer = Client()
        if user is not None:
            viewer.force_login(user)
        assert viewer.get(_page_url(hidden), HTTP_IF_NONE_MATCH=page_etag).status_code == 404


def test_a_board_made_invite_only_is_no_longer_served_to_outsiders(api, client, board, outsider):
    etag = _etag(api(None).get(_api_url(board)))
    _etag(client.get(_page_url(board)))

    Competition.objects.filter(pk=board.pk).update(visibility=Competition.Visibility.INVITE_ONLY)

    assert api(None).get(_api_url(board), HTTP_IF_NONE_MATCH=etag).status_code == 404
    assert api(outsider).get(_api_url(board)).status_code == 404
    assert client.get(_page_url(board)).status_code == 404


def test_a_public_board_may_be_kept_by_shared_caches_and_a_signed_in_page_may_not(
    api, client, board, participant
):
    response = api(participant).get(_api_url(board))
    assert response["Cache-Control"] == "public, no-cache"
    assert "Cookie" in response["Vary"]
    assert "Authorization" in response["Vary"]
    assert client.get(_page_url(board))["Cache-Control"] == "public, no-cache"
    client.force_login(participant)
    assert client.get(_page_url(board))["Cache-Control"] == "private, no-cache"


def test_a_page_with_a_message_to_show_is_rendered_for_it_and_not_kept(client, board, outsider):
    client.force_login(outsider)
    client.get(_page_url(board))
    joined = client.post(f"/c/{board.slug}/join/", {"accept_rules": "on"}, follow=False)
    assert joined.status_code == 302

    page = client.get(_page_url(board)).content.decode()
    assert "You joined" in page
    assert "You joined" not in client.get(_page_url(board)).content.decode()


def _persona(request, name: str):
    from tests.conftest import persona_user

    return persona_user(request, name)
