"""Pages people scan (issue 14 part 4): the leaderboard's column sorting and team search,
which never change the ranks shown; the signed-in member's "your best / your last"; the
competition cards' counts in one query; the entry's manifest download."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.test import Client
from django.utils import timezone

from competitions.models import Competition, Submission
from competitions.views.pages import PAGE_SIZE
from tests import factories
from tests.competitions.test_ladder_board import _ladder_competition, _submit
from tests.pages.builders import scored, team_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_board_cache():
    # The kept pages live in the process's cache: one test's must not answer another's.
    caches["boards"].clear()
    caches["boards-local"].clear()


def _rows(page: str) -> list[tuple[str, str]]:
    """(rank cell text, team) of each row, in the page's order."""
    rows = re.findall(r'<td class="num" id="team-\d+">(.*?)</td>\s*<td>(.*?)</td>', page, re.S)
    text = [(re.sub(r"<[^>]+>", "", rank), re.sub(r"<[^>]+>", "", team)) for rank, team in rows]
    return [(rank, team.removesuffix("your team").strip()) for rank, team in text]


def _board(client: Client, competition: Competition, query: str = "") -> str:
    response = client.get(f"/c/{competition.slug}/leaderboard/{query}")
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def four(competition):
    """zed first, Bea and amy tied second, carl last; amy submitted most, carl last."""
    scored(team_for(competition, "zed"), 0.9, minutes_ago=50)
    scored(team_for(competition, "Bea"), 0.8, minutes_ago=40)
    amy = team_for(competition, "amy")
    scored(amy, 0.8, minutes_ago=90)
    scored(amy, 0.7, minutes_ago=80)
    scored(amy, 0.6, minutes_ago=70)
    scored(team_for(competition, "carl"), 0.7, minutes_ago=10)
    return competition


def test_sorting_by_another_column_keeps_each_teams_rank(client, four):
    assert _rows(_board(client, four)) == [
        ("1", "zed"),
        ("=2", "amy"),
        ("=2", "Bea"),
        ("4", "carl"),
    ]
    by_name = [("=2", "amy"), ("=2", "Bea"), ("4", "carl"), ("1", "zed")]
    assert _rows(_board(client, four, "?sort=team")) == by_name
    assert _rows(_board(client, four, "?sort=-team")) == by_name[::-1]
    assert _rows(_board(client, four, "?sort=-entries"))[0] == ("=2", "amy")
    assert _rows(_board(client, four, "?sort=-last"))[0] == ("4", "carl")
    assert _rows(_board(client, four, "?sort=last"))[0] == ("=2", "amy")


def test_the_sorted_column_says_so_and_links_to_the_opposite_order(client, four):
    page = _board(client, four, "?sort=team")
    assert re.search(
        r'<th scope="col" aria-sort="ascending"><a href="\?split=public&amp;sort=-team">', page
    )
    assert 'aria-sort="descending"' not in page
    page = _board(client, four)
    assert re.search(
        r'<th scope="col" class="num" aria-sort="ascending"><a href="\?split=public">Rank', page
    )
    assert 'href="?split=public&amp;sort=-entries"' in page  # most entries first, first


def test_an_unknown_sort_shows_the_board_in_rank_order(client, four):
    default = _rows(_board(client, four))
    for junk in ("?sort=score", "?sort=team__name", "?sort=-sort_key", "?sort=%27"):
        assert _rows(_board(client, four, junk)) == default


def test_the_team_search_ignores_case_and_keeps_the_boards_ranks(client, four):
    page = _board(client, four, "?q=A")
    assert _rows(page) == [("=2", "amy"), ("=2", "Bea"), ("4", "carl")]
    assert "3 of the 4 teams match “A”." in page
    assert _rows(_board(client, four, "?q=ZED")) == [("1", "zed")]
    page = _board(client, four, "?q=nobody")
    assert _rows(page) == []
    assert "No team on this board has “nobody” in its name." in page


def test_the_search_and_the_sort_go_together_and_survive_the_pages(client, competition):
    for i in range(PAGE_SIZE + 5):
        scored(team_for(competition, f"t{i:03d}"), 0.99 - i / 1000)
    scored(team_for(competition, "other"), 0.999)
    page = _board(client, competition, "?q=t0&sort=-team")
    assert f"{PAGE_SIZE + 5} of the {PAGE_SIZE + 6} teams match" in page
    assert _rows(page)[0] == (str(PAGE_SIZE + 6), f"t{PAGE_SIZE + 4:03d}")
    assert 'href="?split=public&amp;sort=-team&amp;q=t0&amp;page=2" rel="next"' in page
    second = _rows(_board(client, competition, "?q=t0&sort=-team&page=2"))
    assert second == [(str(6 - i), f"t{4 - i:03d}") for i in range(5)]
    # The search form keeps the order; the column links keep the search.
    assert '<input type="hidden" name="sort" value="-team">' in page
    assert 'href="?split=public&amp;sort=-entries&amp;q=t0"' in page


def test_a_sorted_page_is_kept_and_a_search_is_not(client, four):
    sorted_page = client.get(f"/c/{four.slug}/leaderboard/?sort=team")
    assert sorted_page["ETag"]
    again = client.get(
        f"/c/{four.slug}/leaderboard/?sort=team", HTTP_IF_NONE_MATCH=sorted_page["ETag"]
    )
    assert again.status_code == 304
    assert sorted_page["ETag"] != client.get(f"/c/{four.slug}/leaderboard/")["ETag"]
    searched = client.get(f"/c/{four.slug}/leaderboard/?q=amy")
    assert "ETag" not in searched


@pytest.mark.parametrize("teams", [3, 40])
@pytest.mark.parametrize("query", ["?sort=team", "?q=t&sort=-last", "?q=t"])
def test_a_sorted_or_searched_board_runs_the_same_queries_whatever_its_size(
    client, competition, django_assert_num_queries, teams, query
):
    for i in range(teams):
        scored(team_for(competition, f"t{i:03d}"), (i * 7 % 11) / 10)
    # competition (task, board version), rows, counts and ranks, the board's statistics
    with django_assert_num_queries(4):
        page = _board(client, competition, query)
    assert len(_rows(page)) == teams


# --- Your best, your last ----------------------------------------------------------------


def _standing(page: str) -> str:
    """The text of the member's summary box, spaces collapsed."""
    section = re.search(r'<section class="standing".*?</section>', page, re.S)
    assert section is not None, "no standing box"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section[0])).replace(" ,", ",").strip()


def test_a_member_sees_their_best_and_their_last_above_the_board(client, competition, participant):
    alice = participant.teams.get()
    scored(team_for(competition, "leader"), 0.95)
    best = scored(alice, 0.9, minutes_ago=30)
    last = scored(alice, 0.6, minutes_ago=5)
    client.force_login(participant)
    page = _board(client, competition)
    text = _standing(page)
    assert "Your best ROC AUC 0.90000, rank 2 of 2" in text
    assert f'<a href="/c/{competition.slug}/entries/{best.pk}/">0.90000</a>' in page
    assert f"Your last #{last.pk}," in text
    assert text.endswith("UTC: ROC AUC 0.60000")
    assert "standing" not in _board(Client(), competition)  # nobody's, anonymous


def test_the_last_follows_a_submission_the_board_does_not_show_yet(
    client, competition, participant
):
    alice = participant.teams.get()
    scored(alice, 0.9, minutes_ago=30)
    client.force_login(participant)
    _board(client, competition)  # kept for this board version
    queued = factories.submission_row(alice, created_at=timezone.now())
    queued.save(force_insert=True)
    page = _board(client, competition)
    assert re.search(rf"#{queued.pk}</a>, [\d: -]+ UTC: queued", page)
    Submission.objects.filter(pk=queued.pk).update(
        status=Submission.Status.FAILED, failure=Submission.Failure.INVALID
    )
    assert re.search(rf"#{queued.pk}</a>, [\d: -]+ UTC: failed", _board(client, competition))


def test_a_member_without_a_submission_is_told_so(client, competition, participant):
    scored(team_for(competition, "leader"), 0.95)
    client.force_login(participant)
    page = _board(client, competition)
    assert "not on this board yet" in page
    assert "no submission yet" in page


def test_after_finalizing_the_private_board_shows_the_private_best_and_last(
    client, competition, participant
):
    alice = participant.teams.get()
    scored(alice, 0.9, 0.31, minutes_ago=10)
    Competition.objects.filter(pk=competition.pk).update(finalized_at=timezone.now())
    client.force_login(participant)
    text = _standing(_board(client, competition, "?split=private"))
    assert "Your team on the private leaderboard" in text
    assert "Your best ROC AUC 0.31000, rank 1 of 1" in text
    assert text.endswith("UTC: ROC AUC 0.31000")


@pytest.mark.parametrize("teams", [3, 30])
def test_a_members_board_runs_the_same_queries_whatever_its_size(
    client, competition, participant, django_assert_num_queries, teams
):
    for i in range(teams):
        scored(team_for(competition, f"t{i:03d}"), (i * 7 % 11) / 10)
    alice = participant.teams.get()
    scored(alice, 0.5, minutes_ago=20)
    scored(alice, 0.4, minutes_ago=2)
    client.force_login(participant)
    client.get("/")  # sets the CSRF cookie the page's log-out form's token comes from
    # session, user, competition, membership (with its last submission), organizer check,
    # the bell's unread count, rows, counts, the board's statistics, the team's best and
    # last; a kept page: the first 6
    with django_assert_num_queries(10):
        page = _board(client, competition)
    assert "Your last" in page
    with django_assert_num_queries(6):
        assert _board(client, competition) == page


def test_on_a_ladder_board_the_last_is_the_score_the_ladder_told(client):
    competition = _ladder_competition()
    team = factories.team_for(competition, "ann")
    _submit(competition, team, list(range(141)), 150)  # public 0.705, told 0.7
    held = _submit(competition, team, [*range(1, 141), 141, 142], 160)  # 0.71, told 0.7
    client.force_login(team.members.get())
    page = _board(client, competition)
    assert f"#{held.pk}</a>" in page
    assert "UTC: Accuracy 0.70000" in page
    assert "0.71" not in page
    assert "0.705" not in page
    # The manifest's API copy releases no more than the board either.
    manifest = client.get(f"/api/v1/submissions/{held.pk}/manifest/").json()
    assert "public" not in manifest["scores"]
    assert "scores.public" in manifest["withheld"]


# --- Competition cards -------------------------------------------------------------------


@pytest.mark.parametrize("competitions", [1, 8])
def test_the_cards_count_teams_and_submissions_in_one_query_whatever_their_number(
    client, organizer, django_assert_num_queries, competitions
):
    for n in range(competitions):
        competition = factories.make_competition(slug=f"c{n}", organizers=[organizer])
        teams = [team_for(competition, f"u{n}x{t}") for t in range(3)]
        for team in teams:
            scored(team, 0.5, minutes_ago=30)
        team = teams[0]
        scored(team, 0.6, minutes_ago=20)
        cancelled = factories.submission_row(team, status=Submission.Status.CANCELLED)
        cancelled.save(force_insert=True)
    # the count (paginator), the cards with their task and counts, their phases
    with django_assert_num_queries(3):
        page = client.get("/").content.decode()
    assert page.count("<li>3 teams</li>") == competitions
    assert page.count("<li>4 submissions</li>") == competitions


def test_a_card_counts_down_to_its_deadline_or_says_there_is_none(client, organizer):
    dated = factories.make_competition(slug="dated", organizers=[organizer])
    deadline = timezone.now() + timedelta(days=3, hours=2, minutes=30)
    dated.phases.update(end_at=deadline)
    factories.make_competition(slug="endless", organizers=[organizer]).phases.update(end_at=None)
    page = client.get("/").content.decode()
    assert re.search(
        r'ends in <span class="countdown" data-until="[\d\-T:.+]+">3\xa0days, 2\xa0hours</span>',
        page,
    )
    assert f'<time datetime="{deadline.isoformat()}">' in page
    assert "Open-ended: no deadline" in page
    assert "js/countdown.js" in page
    overview = client.get("/c/dated/").content.decode()
    assert "3\xa0days, 2\xa0hours" in overview
    assert "js/countdown.js" in overview


# --- The entry's manifest download -------------------------------------------------------


def test_the_manifest_downloads_as_a_named_attachment(client, competition, participant, settings):
    settings.HELDOUT_SCORER = "in-process"
    from competitions.services.submissions import submission_create
    from judging.services import submission_score

    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    assert submission_score(submission_id=submission.pk)
    page = client.get(f"/c/{competition.slug}/entries/{submission.pk}/").content.decode()
    link = re.search(r'href="([^"]+download=1)" download="([^"]+)">Download the manifest', page)
    assert link is not None
    assert link[2] == f"tiny-entry-{submission.pk}-manifest.json"
    assert "without the host's name and versions" in page  # anonymous: said so
    response = client.get(link[1].replace("&amp;", "&"))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{link[2]}"'
    assert response.json()["host"]["kernel"] is None
    plain = client.get(f"/api/v1/submissions/{submission.pk}/manifest/")
    assert "Content-Disposition" not in plain  # a program's read stays a plain answer
    client.force_login(participant)
    page = client.get(f"/c/{competition.slug}/entries/{submission.pk}/").content.decode()
    assert "without the host's name" not in page


# --- Metric labels -----------------------------------------------------------------------

PAGES_WITH_SCORES = {
    "alice": [
        "/",
        "/c/tiny/",
        "/c/tiny/leaderboard/",
        "/c/tiny/statistics/",
        "/c/tiny/submissions/",
        "/c/tiny/submissions/{submission}/",
        "/c/tiny/entries/{submission}/",
    ],
    "orga": [
        "/c/tiny/leaderboard/?split=private",
        "/c/tiny/organize/",
        "/c/tiny/organize/data/",
        "/c/tiny/organize/submissions/",
    ],
}


def test_no_page_shows_a_metric_by_its_id(client, competition, organizer, participant):
    submission = scored(participant.teams.get(), 0.8, 0.7)
    scored(team_for(competition, "bob2"), 0.9, 0.6)
    for user, urls in PAGES_WITH_SCORES.items():
        client.force_login(participant if user == "alice" else organizer)
        for url in urls:
            response = client.get(url.format(submission=submission.pk))
            assert response.status_code == 200, url
            # The manifest's JSON is data for a program: its ids stay ids.
            text = re.sub(r"<pre.*?</pre>|<[^>]+>", " ", response.content.decode(), flags=re.S)
            assert "roc_auc" not in text, url
            if url not in ("/", "/c/tiny/organize/", "/c/tiny/organize/data/"):
                assert "ROC AUC" in text, url  # the page does name the metric
