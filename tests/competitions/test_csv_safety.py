"""Every CSV Heldout writes neutralizes formula cells (OWASP): the leaderboard CSV (API and
the page's link) and the organizers' leaderboard export in the admin."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from competitions.admin import organizers_group_sync
from competitions.csvsafe import csv_cell, csv_writer
from competitions.models import Competition, Team
from tests import factories

pytestmark = pytest.mark.django_db

HOSTILE = {
    '=HYPERLINK("http://evil.example","x")': '\'=HYPERLINK("http://evil.example","x")',
    "+1+1": "'+1+1",
    "-2+3": "'-2+3",
    "@SUM(A1:A9)": "'@SUM(A1:A9)",
    "\tcmd": "'\tcmd",
    "\r=1": "'\r=1",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_text_cell_a_spreadsheet_would_evaluate_gets_a_quote(name):
    assert csv_cell(name) == HOSTILE[name]


@pytest.mark.parametrize("value", [-0.5, 0.25, 3, None, "alice", "team = good", "", "'=x"])
def test_numbers_and_plain_text_are_written_as_they_are(value):
    assert csv_cell(value) == value


def test_a_negative_number_stays_a_number_but_negative_looking_text_is_quoted():
    buffer = io.StringIO()
    csv_writer(buffer).writerows([[-0.5, "-0.5"]])
    assert buffer.getvalue().splitlines() == ["-0.5,'-0.5"]


def _hostile_board(competition: Competition) -> None:
    """One team per hostile name, scored, the last with a negative score."""
    now = timezone.now()
    for number, name in enumerate(HOSTILE):
        team = factories.team_for(competition, f"hostile{number}")
        # Straight to the row: whatever the services allow as a name, the CSV must be safe.
        Team.objects.filter(pk=team.pk).update(name=name)
        score = -0.5 if number == len(HOSTILE) - 1 else 0.9 - number / 10
        factories.scored_submission(
            team,
            {"public": {"roc_auc": score, "accuracy": 0.5}},
            created_at=now - timedelta(minutes=number + 1),
        )


def _cells(content: bytes, column: str) -> list[str]:
    rows = csv.DictReader(io.StringIO(content.decode(), newline=""))
    return [row[column] for row in rows]


def test_the_leaderboard_csv_quotes_formula_team_names_and_keeps_scores_numbers(
    client, competition
):
    _hostile_board(competition)
    response = client.get(f"/api/v1/competitions/{competition.slug}/leaderboard/?format=csv")

    assert response.status_code == 200
    assert sorted(_cells(response.content, "team")) == sorted(HOSTILE.values())
    scores = _cells(response.content, "roc_auc")
    assert "-0.5" in scores  # a number: not quoted
    assert all(not s.startswith("'") for s in scores)


def test_the_leaderboard_pages_csv_link_is_neutralized_too(client, competition):
    _hostile_board(competition)
    page = client.get(f"/c/{competition.slug}/leaderboard/").content.decode()
    link = re.search(r'href="([^"]+format=csv)"', page)
    assert link is not None

    response = client.get(link[1].replace("&amp;", "&"))

    assert sorted(_cells(response.content, "team")) == sorted(HOSTILE.values())


def test_the_organizers_admin_leaderboard_export_is_neutralized(competition, organizer):
    organizer.groups.add(organizers_group_sync())
    _hostile_board(competition)
    client = Client()
    client.force_login(organizer)

    response = client.post(
        reverse("admin:competitions_competition_changelist"),
        {"action": "leaderboard_csv", "_selected_action": [competition.pk]},
    )

    assert response["Content-Type"].startswith("text/csv")
    teams = _cells(response.content, "team")
    assert set(HOSTILE.values()) <= set(teams)
    assert not any(name in teams for name in HOSTILE)
    assert "-0.5" in _cells(response.content, "score")
