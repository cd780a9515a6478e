"""Comparing two entries of a board: who may, and what the numbers are."""

from __future__ import annotations

import numpy as np
import pytest

from competitions.models import Competition
from competitions.services.teams import competition_join
from scoring.statistics import mcnemar_exact
from tests import factories
from tests.competitions.test_intervals import board, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed_board(organizer, participant, other_participant):
    """An invite-only competition with a row by each participant's team."""
    competition, labels = board(slug="closed")  # the worker's task is not run here
    competition.visibility = Competition.Visibility.INVITE_ONLY
    competition.save()
    competition.organizers.set([organizer])
    competition.invited.add(participant, other_participant)
    subs = []
    for i, user in enumerate((participant, other_participant)):
        team = competition_join(competition=competition, user=user, accept_rules=True).team
        subs.append(submit(competition, team, labels, 0.3 + 0.2 * i, i))
    return competition, subs


def _url(competition, a, b, split="public", api=True) -> str:
    prefix = "/api/v1/competitions" if api else "/c"
    return f"{prefix}/{competition.slug}/leaderboard/compare/?split={split}&a={a.pk}&b={b.pk}"


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("anonymous", 404),
        ("outsider", 404),  # signed in, not invited
        ("other_organizer", 404),  # organizes another competition only
        ("other_participant", 200),  # another team's participant in this competition
        ("participant", 200),
        ("organizer", 200),
    ],
)
def test_the_comparison_is_visible_to_whoever_sees_the_board(
    request, api, client, closed_board, persona, status, other_competition, outsider
):
    competition, (a, b) = closed_board
    user = None if persona == "anonymous" else request.getfixturevalue(persona)
    assert api(user).get(_url(competition, a, b)).status_code == status
    if user is not None:
        client.force_login(user)
    assert client.get(_url(competition, a, b, api=False)).status_code == status


def test_the_private_split_is_compared_only_once_it_may_be_seen(
    api, closed_board, participant, organizer
):
    competition, (a, b) = closed_board
    assert api(participant).get(_url(competition, a, b, "private")).status_code == 403
    assert api(organizer).get(_url(competition, a, b, "private")).status_code == 200


def test_a_submission_that_is_not_on_the_board_cannot_be_compared(api, closed_board, participant):
    competition, (a, b) = closed_board
    team = participant.teams.get(competition=competition)
    worse = submit(competition, team, board_labels(competition), 0.0, 9)
    response = api(participant).get(_url(competition, worse, b))
    assert response.status_code == 404
    assert api(participant).get(_url(competition, a, b)).status_code == 200


def board_labels(competition) -> np.ndarray:
    with competition.task.ground_truth.open("rb") as handle:
        lines = handle.read().decode().splitlines()[1:]
    return np.array([int(line.split(",")[1]) for line in lines])


def test_b_defaults_to_the_leader(api, closed_board, participant):
    competition, (a, b) = closed_board
    url = f"/api/v1/competitions/{competition.slug}/leaderboard/compare/?a={a.pk}"
    body = api(participant).get(url).json()
    assert body["b"]["submission_id"] == b.pk  # the stronger entry leads


@pytest.mark.parametrize(
    ("metric", "test"),
    [("roc_auc", "delong"), ("accuracy", "mcnemar"), ("log_loss", "permutation")],
)
def test_each_metric_gets_its_exact_test_and_a_paired_interval(api, organizer, metric, test):
    competition, labels = board(slug=f"m-{metric.replace('_', '-')}", metric=metric)
    competition.organizers.set([organizer])
    a = submit(competition, factories.team_for(competition, "ann"), labels, 0.45, 1)
    b = submit(competition, factories.team_for(competition, "bob"), labels, 0.15, 2)
    body = api(organizer).get(_url(competition, a, b)).json()
    assert body["test"]["name"] == test
    score_a = a.scores.get(split="public", metric=metric).value
    score_b = b.scores.get(split="public", metric=metric).value
    assert score_a is not None
    assert score_b is not None
    diff = body["difference"]
    assert diff["estimate"] == pytest.approx(score_a - score_b, rel=1e-4)
    assert diff["low"] <= diff["estimate"] <= diff["high"]
    assert body["resamples"] == 1000
    assert body["rows"] == 200
    better = score_a > score_b if body["higher_is_better"] else score_a < score_b
    assert better
    assert body["difference"]["p_a_better"] > 0.95
    assert body["test"]["p_value"] < 0.05
    if test == "mcnemar":  # McNemar on the public rows' correctness, as computed here
        public = board_labels(competition)[::2] == 1
        right_a = (_predictions(a)[::2] >= 0.5) == public
        right_b = (_predictions(b)[::2] >= 0.5) == public
        assert body["test"]["p_value"] == pytest.approx(mcnemar_exact(right_a, right_b).p_value)


def _predictions(submission) -> np.ndarray:
    with submission.file.open("rb") as handle:
        lines = handle.read().decode().splitlines()[1:]
    return np.array([float(line.split(",")[1]) for line in lines])


def test_a_ladder_boards_public_split_is_not_compared(api, client, closed_board, participant):
    """The exact difference of two public scores would give back what the Ladder holds back."""
    competition, (a, b) = closed_board
    competition.public_board = Competition.PublicBoard.LADDER
    competition.save()
    response = api(participant).get(_url(competition, a, b))
    assert response.status_code == 403
    assert response.json()["code"] == "ladder"
    assert "estimate" not in response.content.decode()
    client.force_login(participant)
    page = client.get(_url(competition, a, b, api=False))
    assert page.status_code == 403
    assert "uses the Ladder" in page.content.decode()


def test_a_ladder_boards_public_page_links_no_comparison_and_its_private_page_does(
    client, closed_board, organizer
):
    competition, _ = closed_board
    competition.public_board = Competition.PublicBoard.LADDER
    competition.save()
    client.force_login(organizer)  # sees the private split before the end
    url = f"/c/{competition.slug}/leaderboard/"

    public = client.get(url, {"split": "public"}).content.decode()
    private = client.get(url, {"split": "private"}).content.decode()

    assert public.count('<td class="num" id="team-') == 2
    assert 'class="compare"' not in public
    assert (
        private.count('<a class="compare" href="/c/closed/leaderboard/compare/?split=private') == 2
    )
