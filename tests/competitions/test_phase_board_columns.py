"""Leaderboard columns chosen per phase (Phase.board_metrics, selectors_boards): the JSON
and the CSV show the columns of the phase the board follows (the current one; after the
last, the last one's), the ranking stays the primary metric's, a kept board is never
served under another phase's columns, and a wrong metric name is refused."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from competitions.boardfast import SERVED
from competitions.errors import ApplicationError
from competitions.models import Competition, Phase
from competitions.services.organize import phase_board_metrics_update
from competitions.services.teams import competition_join
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]

METRICS = ("accuracy", "log_loss")
# The final phase starts this long after the test's start: well within the board caches'
# timeout, so only the phase (not an expired entry) can make a board render again.
FINAL_IN = timedelta(minutes=1)


@pytest.fixture
def two_phases(organizer, participant, other_participant) -> Competition:
    """Development shows log loss beside ROC AUC, Final accuracy; two teams scored."""
    competition = factories.make_competition(organizers=[organizer], secondary_metrics=METRICS)
    now = timezone.now()
    Phase.objects.filter(competition=competition).update(
        name="Development", end_at=now + FINAL_IN, board_metrics=["log_loss"]
    )
    Phase.objects.create(
        competition=competition,
        name="Final",
        start_at=now + FINAL_IN,
        end_at=now + FINAL_IN + timedelta(days=10),
        board_metrics=["accuracy"],
    )
    for n, user in enumerate((participant, other_participant)):
        team = competition_join(competition=competition, user=user, accept_rules=True).team
        scores: dict[str, float | None] = {
            "roc_auc": 0.6 + n / 10,
            "accuracy": 0.5 + n / 10,
            "log_loss": 0.7 - n / 10,
        }
        factories.scored_submission(
            team,
            {"public": scores, "private": scores},
            created_at=now - timedelta(hours=1),
            original_name="fake.csv",
            size=1,
        )
    return competition


def _json(client: Client, competition: Competition) -> dict:
    response = client.get(f"/api/v1/competitions/{competition.slug}/leaderboard/")
    assert response.status_code == 200, response.content[:300]
    return response.json()


def _csv_header(client: Client, competition: Competition) -> list[str]:
    response = client.get(f"/api/v1/competitions/{competition.slug}/leaderboard/?format=csv")
    assert response.status_code == 200
    return next(csv.reader(io.StringIO(response.content.decode())))


def after_final_starts():
    return time_machine.travel(timezone.now() + 2 * FINAL_IN, tick=True)


def test_the_json_and_csv_show_the_current_phases_columns(two_phases):
    board = _json(Client(), two_phases)
    assert board["metric"] == "roc_auc"
    assert board["secondary_metrics"] == ["log_loss"]
    assert [set(r["scores"]) for r in board["results"]] == [{"roc_auc", "log_loss"}] * 2
    header = _csv_header(Client(), two_phases)
    assert header[2:4] == ["roc_auc", "log_loss"]
    assert "accuracy" not in header

    with after_final_starts():
        board = _json(Client(), two_phases)
        assert board["secondary_metrics"] == ["accuracy"]
        assert [set(r["scores"]) for r in board["results"]] == [{"roc_auc", "accuracy"}] * 2
        assert _csv_header(Client(), two_phases)[2:4] == ["roc_auc", "accuracy"]


def test_the_competitions_api_lists_each_phases_columns(two_phases):
    detail = Client().get(f"/api/v1/competitions/{two_phases.slug}/").json()
    assert {p["name"]: p["board_metrics"] for p in detail["phases"]} == {
        "Development": ["log_loss"],
        "Final": ["accuracy"],
    }


def test_the_ranking_stays_the_primary_metrics_whatever_the_columns(two_phases):
    board = _json(Client(), two_phases)
    assert [r["score"] for r in board["results"]] == [0.7, 0.6]
    assert [r["rank"] for r in board["results"]] == [1, 2]


def test_after_the_last_phase_the_board_keeps_the_last_phases_columns(two_phases):
    with time_machine.travel(timezone.now() + timedelta(days=30), tick=True):
        assert _json(Client(), two_phases)["secondary_metrics"] == ["accuracy"]


def test_a_phase_that_chooses_none_shows_the_primary_and_secondary_metrics(two_phases):
    Phase.objects.filter(competition=two_phases).update(board_metrics=[])
    assert _json(Client(), two_phases)["secondary_metrics"] == list(METRICS)
    assert _csv_header(Client(), two_phases)[2:5] == ["roc_auc", *METRICS]


@pytest.mark.parametrize(
    "url",
    ["/c/{}/leaderboard/", "/api/v1/competitions/{}/leaderboard/"],
    ids=["page", "json"],
)
def test_a_kept_board_is_never_served_under_another_phases_columns(two_phases, url):
    url = url.format(two_phases.slug)
    client = Client()
    client.get(url)
    kept = client.get(url)
    assert kept.wsgi_request.META.get(SERVED)  # the anonymous fast path answers it
    assert b"log_loss" in kept.content or b"Log loss" in kept.content

    with after_final_starts():
        fresh = client.get(url)
        assert not fresh.wsgi_request.META.get(SERVED)
        assert fresh["ETag"] != kept["ETag"]
        assert b"accuracy" in fresh.content or b"Accuracy" in fresh.content
        assert b"log_loss" not in fresh.content
        assert b"Log loss" not in fresh.content
        again = client.get(url)
        assert again.wsgi_request.META.get(SERVED)  # kept again, under the new phase
        assert again.content == fresh.content


def test_wrong_metric_names_are_refused_all_at_once(two_phases, organizer):
    final = two_phases.phases.get(name="Final")
    with pytest.raises(ApplicationError) as excinfo:
        phase_board_metrics_update(
            phase=final, board_metrics=["f1", "accuracy", "mae"], by=organizer
        )
    message = str(excinfo.value)
    assert "'f1', 'mae'" in message
    assert "roc_auc, accuracy, log_loss" in message
    final.refresh_from_db()
    assert final.board_metrics == ["accuracy"]


def test_an_organizer_changes_the_current_phases_columns_and_the_board_follows(
    two_phases, organizer
):
    client = Client()
    assert _json(client, two_phases)["secondary_metrics"] == ["log_loss"]
    development = two_phases.phases.get(name="Development")

    phase_board_metrics_update(
        phase=development, board_metrics=["accuracy", "log_loss"], by=organizer
    )

    assert _json(client, two_phases)["secondary_metrics"] == ["accuracy", "log_loss"]
