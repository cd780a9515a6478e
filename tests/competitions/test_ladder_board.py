"""A Ladder public board through the real services: submissions scored in process, the team's
rows refreshed, and every place a participant reads a public score (the board's JSON and CSV,
the submissions API and page, the submission detail API, the entry page, the manifest)."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.test import Client

from competitions.models import Competition, LeaderboardEntry, Submission
from competitions.services.intervals import leaderboard_intervals_refresh
from competitions.services.submissions import submission_create
from competitions.stats import team_progress
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from tests import factories

pytestmark = pytest.mark.django_db
ROWS = 400  # even rows public, odd rows private
LABELS = np.random.default_rng(7).integers(0, 2, ROWS)


def _ladder_competition(slug: str = "ladder") -> Competition:
    competition = factories.make_competition(
        slug=slug, primary_metric="accuracy", daily_limit=50, secondary_metrics=()
    )
    usage = np.where(np.arange(ROWS) % 2 == 0, "Public", "Private")
    text = "id,label,Usage\n" + "".join(
        f"r{i},{y},{u}\n" for i, (y, u) in enumerate(zip(LABELS, usage, strict=True))
    )
    competition.task.ground_truth.save("truth.csv", ContentFile(text.encode()))
    competition.public_board = Competition.PublicBoard.LADDER
    competition.save(update_fields=["public_board"])
    return competition


def _submit(competition, team, public_right: list[int], private_right: int) -> Submission:
    """Predictions right on the given public rows (indices among the 200 public ones) and on
    the first `private_right` private rows, wrong elsewhere; scored in process."""
    right = np.zeros(ROWS, dtype=bool)
    right[[2 * i for i in public_right]] = True
    right[1 : 2 * private_right : 2] = True
    predictions = np.where(right, LABELS, 1 - LABELS)
    text = "id,label\n" + "".join(f"r{i},{p}\n" for i, p in enumerate(predictions))
    submission = submission_create(
        competition=competition,
        user=team.members.first(),
        uploaded_file=factories.upload(text.encode()),
    )
    assert submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    submission.refresh_from_db()
    return submission


def _raw_public(submission: Submission) -> float | None:
    return submission.scores.get(split="public", metric="accuracy").value


def test_a_ladder_board_shows_only_released_public_scores(api):
    competition = _ladder_competition()
    team = factories.team_for(competition, "ann")
    user = team.members.get()
    first = _submit(competition, team, list(range(141)), 150)  # public 0.705
    # Two more public rows right and one wrong: +0.005, within the noise (about 0.009).
    held = _submit(competition, team, [*range(1, 141), 141, 142], 160)  # public 0.71
    assert (_raw_public(first), _raw_public(held)) == (0.705, 0.71)
    first.refresh_from_db()
    held.refresh_from_db()
    assert first.ladder_public_score == 0.7  # rounded to its standard error (0.032): 1 decimal
    assert held.ladder_public_score == 0.7  # not released: the board repeats the old score

    public = LeaderboardEntry.objects.get(team=team, split="public")
    assert (public.submission_id, public.score, public.scores) == (first.pk, 0.7, {"accuracy": 0.7})
    private = LeaderboardEntry.objects.get(team=team, split="private")
    assert private.score == held.scores.get(split="private", metric="accuracy").value  # raw

    client = api(user)
    assert (
        client.get(f"/api/v1/competitions/{competition.slug}/").json()["public_board"] == "ladder"
    )
    rules = client.get(f"/c/{competition.slug}/rules/").content.decode()
    assert "The public leaderboard is a" in rules
    listed = client.get(f"/api/v1/competitions/{competition.slug}/submissions/").json()
    by_id = {r["id"]: r["scores"] for r in listed["results"]}
    assert by_id[held.pk]["public"] == {"accuracy": 0.7}
    detail = client.get(f"/api/v1/submissions/{held.pk}/").json()
    assert detail["scores"]["public"] == {"accuracy": 0.7}
    board = client.get(f"/api/v1/competitions/{competition.slug}/leaderboard/").json()
    assert [r["score"] for r in board["results"]] == [0.7]
    csv = client.get(f"/api/v1/competitions/{competition.slug}/leaderboard/", {"format": "csv"})
    browser = Client()
    browser.force_login(user)
    page = browser.get(f"/c/{competition.slug}/submissions/").content.decode()
    entry = browser.get(f"/c/{competition.slug}/entries/{first.pk}/").content.decode()
    for text in (csv.content.decode(), page, entry, str(listed), str(detail), str(board)):
        assert "0.705" not in text
        assert "0.71" not in text
    progress = team_progress(competition=competition, team=team, split="public")
    assert [value for _, value in progress.mine] == [0.7, 0.7]  # the chart: what was told

    # No interval around the exact public score (it would give its digits back).
    leaderboard_intervals_refresh(competition_id=competition.pk)
    public.refresh_from_db()
    private.refresh_from_db()
    assert (public.ci_low, private.ci_low is not None) == (None, True)

    better = _submit(competition, team, list(range(180)), 170)  # public 0.9: far beyond
    better.refresh_from_db()
    assert better.ladder_public_score == 0.9
    public.refresh_from_db()
    assert (public.submission_id, public.score) == (better.pk, 0.9)


def test_switching_the_organizer_setting_rebuilds_the_public_board():
    competition = _ladder_competition("switch")
    organizer = factories.make_user("orga-ladder", staff=True)
    competition.organizers.add(organizer)
    team = factories.team_for(competition, "bob")
    _submit(competition, team, list(range(141)), 150)
    assert LeaderboardEntry.objects.get(team=team, split="public").score == 0.7

    browser = Client()
    browser.force_login(organizer)
    limits = {"which": "limits", "selection_limit": 2, "max_team_size": 5}
    response = browser.post(
        f"/c/{competition.slug}/organize/phases/", {**limits, "public_board": "plain"}
    )
    assert response.status_code in (200, 302), response.content

    competition.refresh_from_db()
    assert competition.public_board == "plain"
    assert LeaderboardEntry.objects.get(team=team, split="public").score == 0.705
    rules = browser.get(f"/c/{competition.slug}/rules/").content.decode()
    assert "shows every team's best public score as it is" in rules
