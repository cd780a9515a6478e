"""Anonymous board reads answered from their kept copy (competitions/boardfast.py): only
while the board version, the competition's visibility, finalize and status are those the
normal path answered under; never to a signed-in user or a token; only GETs with allow-listed
parameters; with the normal path's headers, bytes and 304s."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.test import Client, RequestFactory
from django.utils import timezone

from competitions import boardfast
from competitions.boardfast import SERVED
from competitions.models import BoardVersion, Competition, Team
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]

URLS = {
    "page": "/c/{}/leaderboard/",
    "page 2": "/c/{}/leaderboard/?page=2",
    "json": "/api/v1/competitions/{}/leaderboard/",
    "json page 2": "/api/v1/competitions/{}/leaderboard/?page=2&page_size=1",
}
# Per request, never kept.
PER_REQUEST = {"x-request-id"}


@pytest.fixture
def board(competition, participant, other_participant):
    for n, user in enumerate((participant, other_participant)):
        _score(user.teams.get(competition=competition), 0.6 + n / 10)
    return competition


def _score(team: Team, value: float) -> None:
    metric = team.competition.task.primary_metric
    factories.scored_submission(
        team,
        {split: {metric: value, "accuracy": 0.5} for split in ("public", "private")},
        created_at=timezone.now() - timedelta(hours=1),
        original_name="fake.csv",
        size=1,
    )


def _fast(response) -> bool:
    return bool(response.wsgi_request.META.get(SERVED))


def _kept(client: Client, url: str):
    """Asks twice: the normal path answers (and keeps) the first, the kept copy the second."""
    first = client.get(url)
    assert first.status_code == 200, first.content[:300]
    assert not _fast(first)
    second = client.get(url)
    assert _fast(second)
    return second


def _headers(response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.items() if k.lower() not in PER_REQUEST}


def _without_fast_path(settings) -> Client:
    """A client of a stack without the fast path: the normal path answers every request."""
    middleware = [m for m in settings.MIDDLEWARE if not m.endswith("BoardFastPathMiddleware")]
    settings.MIDDLEWARE = middleware
    return Client()


@pytest.mark.parametrize("name", list(URLS))
def test_a_kept_read_costs_one_query_and_has_the_normal_paths_bytes_and_headers(
    client, board, name, settings, django_assert_num_queries
):
    url = URLS[name].format(board.slug)
    client.get(url)
    with django_assert_num_queries(1):
        fast = client.get(url)
    assert _fast(fast)

    # The board cache's kept answer, through the whole stack.
    normal = _without_fast_path(settings).get(url)
    assert not _fast(normal)
    assert normal.status_code == fast.status_code == 200
    assert fast.content == normal.content
    assert _headers(fast) == _headers(normal)
    assert fast["X-Request-ID"]  # and the middleware outside still adds its header
    assert fast["X-Frame-Options"] == "DENY"
    assert fast["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name", list(URLS))
def test_a_matching_if_none_match_is_answered_304_as_the_normal_path_does(
    client, board, name, settings
):
    url = URLS[name].format(board.slug)
    etag = _kept(client, url)["ETag"]

    fast = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert _fast(fast)
    assert fast.status_code == 304
    assert fast.content == b""
    assert client.get(url, HTTP_IF_NONE_MATCH=f'"x", W/{etag}').status_code == 304
    other = client.get(url, HTTP_IF_NONE_MATCH='"other"')
    assert _fast(other)
    assert other.status_code == 200

    normal = _without_fast_path(settings).get(url, HTTP_IF_NONE_MATCH=etag)
    assert not _fast(normal)
    assert normal.status_code == 304
    assert _headers(fast) == _headers(normal)


@pytest.mark.parametrize("visibility", ["invite_only", "unlisted"])
@pytest.mark.parametrize("name", ["page", "json"])
def test_a_competition_whose_visibility_changed_is_never_answered_from_the_kept_copy(
    client, board, name, visibility
):
    url = URLS[name].format(board.slug)
    _kept(client, url)
    version = BoardVersion.objects.get(competition_id=board.pk).version

    Competition.objects.filter(pk=board.pk).update(visibility=visibility)
    # The triggers count the board up too; put the version back, as if they had not, so that
    # only the kept visibility can tell.
    BoardVersion.objects.filter(competition_id=board.pk).update(version=version)

    response = client.get(url)
    assert not _fast(response)
    if visibility == "invite_only":
        assert response.status_code == 404
    else:  # still readable by its address, but no longer for shared caches to keep
        assert response.status_code == 200
        assert response["Cache-Control"] == "private, no-cache"


@pytest.mark.parametrize("name", ["page", "json"])
def test_a_new_board_version_is_never_answered_stale(client, board, participant, name):
    url = URLS[name].format(board.slug)
    kept = _kept(client, url)

    _score(participant.teams.get(competition=board), 0.987)

    response = client.get(url)
    assert not _fast(response)
    assert response["ETag"] != kept["ETag"]
    assert b"0.987" in response.content
    assert _fast(client.get(url))  # and the new version is kept in turn


def test_a_finalize_is_never_answered_from_the_copy_kept_before(client, board):
    url = URLS["json"].format(board.slug)
    _kept(client, url)
    version = BoardVersion.objects.get(competition_id=board.pk).version

    Competition.objects.filter(pk=board.pk).update(finalized_at=timezone.now())
    BoardVersion.objects.filter(competition_id=board.pk).update(version=version)

    assert not _fast(client.get(url))


def test_a_status_passing_with_the_clock_is_never_answered_from_the_copy_kept_before(
    client, board, monkeypatch
):
    Competition.objects.filter(pk=board.pk).update(end_at=timezone.now() + timedelta(hours=1))
    url = URLS["page"].format(board.slug)
    _kept(client, url)

    later = timezone.now() + timedelta(hours=2)
    monkeypatch.setattr("competitions.views.common.timezone.now", lambda: later)

    response = client.get(url)
    assert not _fast(response)
    assert _fast(client.get(url))  # kept again, as finished


@pytest.mark.parametrize("name", list(URLS))
def test_a_signed_in_user_never_gets_the_anonymous_copy(client, api, board, participant, name):
    url = URLS[name].format(board.slug)
    _kept(Client(), url)

    client.force_login(participant)
    by_session = client.get(url)
    by_token = api(participant).get(url)

    assert not _fast(by_session)
    assert not _fast(by_token)
    if name.startswith("page"):
        assert participant.username.encode() in by_session.content


def test_the_csrf_cookie_alone_keeps_a_read_anonymous_and_any_other_cookie_does_not(
    client, board, settings
):
    url = URLS["page"].format(board.slug)
    _kept(client, url)

    client.cookies[settings.CSRF_COOKIE_NAME] = "x" * 32
    assert _fast(client.get(url))
    client.cookies["messages"] = "something"
    assert not _fast(client.get(url))


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("page", {"q": "team"}),
        ("page", {"team": "mine"}),
        ("json", {"format": "csv"}),
        ("json", {"anything": "1"}),
    ],
)
def test_parameters_outside_the_allow_list_go_the_normal_path(client, board, name, extra):
    url = URLS[name].format(board.slug)
    _kept(client, url)
    separator = "&" if "?" in url else "?"
    query = "&".join(f"{k}={v}" for k, v in extra.items())
    _kept(client, f"{url}{separator}page=1")  # an allow-listed one is kept

    for _ in range(2):
        assert not _fast(client.get(f"{url}{separator}{query}"))


def test_head_other_methods_and_other_accepts_go_the_normal_path(client, board):
    page, api_url = URLS["page"].format(board.slug), URLS["json"].format(board.slug)
    _kept(client, page)
    _kept(client, api_url)

    head = client.head(page)
    assert not _fast(head)
    assert head.status_code == 200
    assert not _fast(client.post(page))
    assert not _fast(client.options(api_url))
    browsable = client.get(api_url, HTTP_ACCEPT="text/html")
    assert not _fast(browsable)
    assert browsable["Content-Type"].startswith("text/html")
    assert not _fast(client.get(api_url, HTTP_AUTHORIZATION="Token nonsense"))


def test_with_the_board_cache_off_nothing_is_answered_from_a_copy(client, board, settings):
    settings.HELDOUT_BOARD_CACHE = False
    url = URLS["page"].format(board.slug)
    client.get(url)

    assert not _fast(client.get(url))


def test_a_database_error_on_the_fast_path_leaves_the_answer_to_the_normal_path(
    client, board, monkeypatch
):
    url = URLS["json"].format(board.slug)
    _kept(client, url)

    def broken(slug: str):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("competitions.boardfast._current", broken)

    response = client.get(url)
    assert response.status_code == 200
    assert not _fast(response)


# The two relaxations for reads under load (module docstring of competitions/boardfast.py).


@pytest.fixture
def fresh_rows():
    boardfast._rows.clear()
    boardfast._refreshing.clear()
    yield
    boardfast._rows.clear()
    boardfast._refreshing.clear()


def _fast_key(url: str) -> str:
    found = boardfast.fast_key(RequestFactory().get(url))
    assert found is not None
    return found[0]


def test_within_the_fresh_window_a_read_costs_no_query_and_may_show_the_board_as_it_was(
    client, board, participant, settings, fresh_rows, django_assert_num_queries
):
    settings.HELDOUT_BOARD_FRESH_MS = 60_000
    url = URLS["json"].format(board.slug)
    kept = _kept(client, url)
    with django_assert_num_queries(0):
        assert _fast(client.get(url))

    _score(participant.teams.get(competition=board), 0.987)
    within = client.get(url)
    assert _fast(within)
    assert within["ETag"] == kept["ETag"]  # the version as it was, named as such
    assert b"0.987" not in within.content

    settings.HELDOUT_BOARD_FRESH_MS = 0  # the window passed
    after = client.get(url)
    assert not _fast(after)
    assert b"0.987" in after.content


@pytest.mark.parametrize("name", ["page", "json"])
def test_while_a_request_of_the_process_refreshes_a_board_the_others_get_the_previous_copy(
    client, board, participant, name, fresh_rows
):
    url = URLS[name].format(board.slug)
    kept = _kept(client, url)
    _score(participant.teams.get(competition=board), 0.987)
    key = _fast_key(url)
    boardfast._refreshing[key] = time.monotonic()  # as if a concurrent request were at it

    meanwhile = client.get(url)
    assert _fast(meanwhile)
    assert meanwhile["ETag"] == kept["ETag"]
    assert b"0.987" not in meanwhile.content

    boardfast._refreshing[key] = time.monotonic() - boardfast.STALE_FOR_S  # it took too long
    refreshed = client.get(url)
    assert not _fast(refreshed)
    assert b"0.987" in refreshed.content
    assert key not in boardfast._refreshing  # released once answered
    assert _fast(client.get(url))


def test_a_refresh_under_way_never_answers_a_board_whose_access_changed(client, board, fresh_rows):
    url = URLS["page"].format(board.slug)
    _kept(client, url)
    key = _fast_key(url)
    boardfast._refreshing[key] = time.monotonic()

    Competition.objects.filter(pk=board.pk).update(visibility="invite_only")

    response = client.get(url)
    assert not _fast(response)
    assert response.status_code == 404
