"""The leaderboard and statistics tabs: shared ranks shown as "=2", pages, finding one's
team, the public/private switch, and the plots' text for screen readers."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from competitions.models import Competition
from competitions.views.pages import PAGE_SIZE, _page_numbers
from tests.pages.builders import scored, team_for

pytestmark = pytest.mark.django_db


def _ranks(page: str) -> list[tuple[str, str]]:
    """(rank cell text, team) of each row."""
    rows = re.findall(r'<td class="num" id="team-\d+">(.*?)</td>\s*<td>(.*?)</td>', page, re.S)
    text = [(re.sub(r"<[^>]+>", "", rank), re.sub(r"<[^>]+>", "", team)) for rank, team in rows]
    return [(rank, team.removesuffix("your team")) for rank, team in text]


def test_shared_ranks_are_marked_with_an_equals_sign(client, competition):
    for name, value in (("ann", 0.9), ("ben", 0.8), ("cat", 0.8), ("dan", 0.7)):
        scored(team_for(competition, name), value)
    page = client.get(f"/c/{competition.slug}/leaderboard/").content.decode()
    assert _ranks(page) == [("1", "ann"), ("=2", "ben"), ("=2", "cat"), ("4", "dan")]


def test_a_tie_across_a_page_boundary_is_marked_on_both_pages(client, competition):
    for i in range(PAGE_SIZE - 1):
        scored(team_for(competition, f"t{i:03d}"), 0.99 - i / 1000)
    scored(team_for(competition, "last"), 0.5, minutes_ago=90)
    scored(team_for(competition, "next"), 0.5, minutes_ago=30)
    url = f"/c/{competition.slug}/leaderboard/"
    first = _ranks(client.get(url).content.decode())
    second = _ranks(client.get(url + "?page=2").content.decode())
    assert first[-1] == (f"={PAGE_SIZE}", "last")
    assert first[-2] == (str(PAGE_SIZE - 1), f"t{PAGE_SIZE - 2:03d}")
    assert second == [(f"={PAGE_SIZE}", "next")]


def test_find_my_team_opens_the_page_that_holds_it(client, competition, participant):
    for i in range(PAGE_SIZE + 10):
        scored(team_for(competition, f"t{i:03d}"), 0.99 - i / 1000)
    alice = participant.teams.get()
    scored(alice, 0.1)
    client.force_login(participant)
    response = client.get(f"/c/{competition.slug}/leaderboard/?team=mine")
    assert response["Location"] == (
        f"/c/{competition.slug}/leaderboard/?split=public&page=2#team-{alice.pk}"
    )
    page = client.get(response["Location"].split("#")[0]).content.decode()
    assert re.search(r'<tr class="mine">\s*<td class="num" id="team-\d+">61</td>', page)


def test_the_page_list_keeps_the_first_last_and_nearby_pages():
    assert _page_numbers(1, 1) == [1]
    assert _page_numbers(1, 3) == [1, 2, 3]
    assert _page_numbers(6, 200) == [1, None, 4, 5, 6, 7, 8, None, 200]
    assert _page_numbers(200, 200) == [1, None, 198, 199, 200]


def test_the_private_switch_appears_for_everyone_once_finalized(client, competition, participant):
    scored(participant.teams.get(), 0.9, 0.4)
    url = f"/c/{competition.slug}/leaderboard/"
    assert "?split=private" not in client.get(url).content.decode()
    Competition.objects.filter(pk=competition.pk).update(finalized_at=timezone.now())
    page = client.get(url + "?split=private").content.decode()
    assert 'href="?split=private" aria-current="page"' in page
    assert "0.40000" in page
    assert (
        f"/api/v1/competitions/{competition.slug}/leaderboard/?split=private&amp;format=csv" in page
    )


def test_the_csv_link_downloads_the_board_shown(client, competition, participant):
    scored(participant.teams.get(), 0.9)
    page = client.get(f"/c/{competition.slug}/leaderboard/").content.decode()
    match = re.search(r'href="([^"]+format=csv)"', page)
    assert match is not None
    link = match[1].replace("&amp;", "&")
    response = client.get(link)
    assert response.status_code == 200
    assert response.content.decode().splitlines()[1].startswith("1,alice,0.9")


def test_the_statistics_plots_say_in_words_what_they_show(client, competition, participant):
    alice = participant.teams.get()
    scored(alice, 0.6, minutes_ago=120)
    scored(alice, 0.8, minutes_ago=60)
    scored(team_for(competition, "bob2"), 0.9, minutes_ago=90)
    client.force_login(participant)
    page = client.get(f"/c/{competition.slug}/statistics/").content.decode()
    assert page.count('role="img"') == 2
    descriptions = re.findall(r"<desc id=\"[\w-]+\">([^<]+)</desc>", page)
    assert descriptions[0] == (
        "2 teams on the public leaderboard. Best 0.9, median 0.85, worst 0.8. "
        "Your team&#x27;s score is 0.8."
    )
    assert descriptions[1] == (
        "2 ranked submissions of alice on the public leaderboard; its best ROC AUC is 0.8. "
        "The leader, bob2, has 0.9."
    )
    assert page.count('class="dot mine"') == 2


def test_the_statistics_of_the_private_board_stay_hidden_until_finalized(
    client, competition, participant
):
    scored(participant.teams.get(), 0.9, 0.123)
    page = client.get(f"/c/{competition.slug}/statistics/?split=private").content.decode()
    assert "public leaderboard" in page
    assert "0.123" not in page
