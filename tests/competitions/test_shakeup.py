"""The shake-up report (services/shakeup.py): computed by the worker's service after
finalize from real scores and intervals, kept, shown on the private board (page, JSON, CSV)
and on the organizers' page, discarded on reopen and computed again at the next finalize."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.test import Client
from django.utils import timezone

from competitions.models import BoardVersion, OutboxMessage, ShakeupEntry, Submission
from competitions.selectors import leaderboard_page
from competitions.services.intervals import leaderboard_intervals_refresh
from competitions.services.lifecycle import competition_finalize, competition_reopen
from competitions.services.shakeup import SHAKEUP_TASK, shakeup_compute, shakeup_discard
from competitions.services.submissions import submission_create
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db
ROWS = 400
PUBLIC = np.arange(ROWS) % 2 == 0  # even rows are public


def _labels() -> np.ndarray:
    return (np.random.default_rng(0).random(ROWS) < 0.5).astype(int)


def _competition(organizer, slug: str = "shake"):
    competition = factories.make_competition(
        slug=slug, organizers=[organizer], secondary_metrics=(), daily_limit=50
    )
    usage = np.where(PUBLIC, "Public", "Private")
    text = "id,label,Usage\n" + "".join(
        f"r{i},{y},{u}\n" for i, (y, u) in enumerate(zip(_labels(), usage, strict=True))
    )
    competition.task.ground_truth.save("truth.csv", ContentFile(text.encode()))
    return competition


def _submit(competition, team, scores: np.ndarray) -> Submission:
    text = "id,label\n" + "".join(f"r{i},{s:.4f}\n" for i, s in enumerate(scores))
    submission = submission_create(
        competition=competition,
        user=team.members.first(),
        uploaded_file=factories.upload(text.encode()),
    )
    assert submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    return submission


def _skilled(skill: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(1000 + seed).random(ROWS)
    return np.clip(skill * _labels() + noise * (1 - skill), 0, 1)


def _overfit() -> np.ndarray:
    """Perfect on the public rows (found by probing the board), chance on the private ones."""
    chance = np.random.default_rng(7).random(ROWS)
    return np.where(PUBLIC, _labels().astype(float), chance)


def _shaken(organizer):
    """Public: overfit 1, honest 2, weak 3. Private: honest 1, then the two near chance."""
    competition = _competition(organizer)
    _submit(competition, factories.team_for(competition, "overfit"), _overfit())
    _submit(competition, factories.team_for(competition, "honest"), _skilled(0.3, 1))
    _submit(competition, factories.team_for(competition, "weak"), _skilled(0.02, 2))
    return competition


def _report(competition) -> dict[str, tuple]:
    return {
        e.team.name: (e.public_rank, e.private_rank, e.change, e.beyond_sampling)
        for e in ShakeupEntry.objects.filter(competition=competition).select_related("team")
    }


def test_finalize_asks_a_worker_for_the_report_and_computes_nothing_itself(organizer):
    competition = _shaken(organizer)
    competition_finalize(competition=competition, by=organizer)
    assert OutboxMessage.objects.filter(task=SHAKEUP_TASK, args=[competition.pk]).exists()
    assert not ShakeupEntry.objects.filter(competition=competition).exists()


def test_the_report_marks_the_overfitted_fall_and_the_honest_rise_beyond_sampling(organizer):
    competition = _shaken(organizer)
    competition_finalize(competition=competition, by=organizer)
    assert shakeup_compute(competition_id=competition.pk) == 3
    report = _report(competition)
    assert report["honest"] == (2, 1, 1, True)
    overfit = report["overfit"]
    assert overfit[0] == 1
    assert overfit[1] in (2, 3)
    assert overfit[3] is True
    # The weak team stays within what sampling allows: near chance on both boards.
    assert report["weak"][0] == 3
    assert report["weak"][3] is False
    # A duplicate task writes the same report.
    assert shakeup_compute(competition_id=competition.pk) == 3
    assert _report(competition) == report


def test_the_private_board_shows_since_public_on_the_page_json_and_csv(organizer):
    competition = _shaken(organizer)
    competition_finalize(competition=competition, by=organizer)
    shakeup_compute(competition_id=competition.pk)
    rows = {r.team: r for r in leaderboard_page(competition=competition, split="private").rows}
    assert (rows["honest"].public_rank, rows["honest"].since_public) == (2, "↑1")
    assert rows["honest"].beyond_sampling is True

    url = f"/api/v1/competitions/{competition.slug}/leaderboard/"
    body = client_for(None).get(url, {"split": "private"}).json()
    honest = next(r for r in body["results"] if r["team"] == "honest")
    assert (honest["public_rank"], honest["rank_change"], honest["beyond_sampling"]) == (2, 1, True)

    text = client_for(None).get(url, {"split": "private", "format": "csv"}).content.decode()
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][-5:-2] == ["public_rank", "rank_change", "beyond_sampling"]
    assert table[1][1] == "honest"
    assert table[1][-5:-2] == ["2", "1", "True"]

    page = Client().get(f"/c/{competition.slug}/leaderboard/?split=private").content.decode()
    assert "Since public" in page
    assert 'title="Public rank 2">↑1</span>' in page
    assert "badge beyond-sampling" in page


def test_the_public_board_and_an_unfinished_competition_have_no_since_public_column(organizer):
    competition = _shaken(organizer)
    client = Client()
    client.force_login(organizer)
    page = client.get(f"/c/{competition.slug}/leaderboard/?split=private").content.decode()
    assert "Since public" not in page
    competition_finalize(competition=competition, by=organizer)
    shakeup_compute(competition_id=competition.pk)
    page = client.get(f"/c/{competition.slug}/leaderboard/?split=public").content.decode()
    assert "Since public" not in page


def test_reopen_discards_the_report_and_the_next_finalize_computes_it_again(organizer):
    competition = _shaken(organizer)
    competition_finalize(competition=competition, by=organizer)
    shakeup_compute(competition_id=competition.pk)
    competition_reopen(competition=competition, by=organizer, reason="a late correction")
    assert not ShakeupEntry.objects.filter(competition=competition).exists()
    # A task that arrives after the reopen writes nothing.
    assert shakeup_compute(competition_id=competition.pk) == 0
    assert not ShakeupEntry.objects.filter(competition=competition).exists()
    # The honest team improves meanwhile: the next report tells the new story.
    competition.phases.update(end_at=timezone.now() + timedelta(days=1))  # finalize ended it
    honest = competition.teams.get(name="honest")
    _submit(competition, honest, np.where(PUBLIC, _labels().astype(float), _skilled(0.3, 1)))
    competition_finalize(competition=competition, by=organizer)
    assert shakeup_compute(competition_id=competition.pk) == 3
    report = _report(competition)
    assert report["honest"][:3] == (1, 1, 0)  # shares public #1 with the overfit team now


def test_the_organizers_page_lists_every_team_for_the_organizers_only(
    organizer, outsider, other_organizer
):
    competition = _shaken(organizer)
    factories.make_competition(slug="elsewhere", organizers=[other_organizer])
    url = f"/c/{competition.slug}/organize/shake-up/"
    client = Client()
    client.force_login(organizer)
    assert "appears when the competition is finalized" in client.get(url).content.decode()
    competition_finalize(competition=competition, by=organizer)
    assert "Being computed" in client.get(url).content.decode()
    shakeup_compute(competition_id=competition.pk)
    page = client.get(url).content.decode()
    for name in ("overfit", "honest", "weak"):
        assert f">{name}</td>" in page
    honest = competition.teams.get(name="honest")
    assert f'id="shakeup-team-{honest.pk}"' in page

    participant = competition.teams.get(name="weak").members.first()
    for user in (outsider, participant, other_organizer):
        other = Client()
        other.force_login(user)
        assert other.get(url).status_code == 403, user.username


def test_a_board_read_before_the_report_shows_it_once_the_worker_wrote_it(organizer):
    competition = _shaken(organizer)
    competition_finalize(competition=competition, by=organizer)
    url = f"/api/v1/competitions/{competition.slug}/leaderboard/"
    before = client_for(None).get(url, {"split": "private"}).json()["results"]
    assert {r["public_rank"] for r in before} == {None}  # kept by the board cache
    shakeup_compute(competition_id=competition.pk)
    after = client_for(None).get(url, {"split": "private"}).json()["results"]
    assert {r["team"]: r["public_rank"] for r in after} == {"honest": 2, "overfit": 1, "weak": 3}
    competition_reopen(competition=competition, by=organizer, reason="a late correction")
    client = Client()
    client.force_login(organizer)
    board = client.get(f"/api/v1/competitions/{competition.slug}/leaderboard/?split=private")
    assert {r["public_rank"] for r in board.json()["results"]} == {None}


def test_writing_or_discarding_the_report_counts_the_board_version_up(organizer):
    competition = _shaken(organizer)
    competition_finalize(competition=competition, by=organizer)
    leaderboard_intervals_refresh(competition_id=competition.pk)

    def version() -> int:
        found = BoardVersion.objects.filter(competition_id=competition.pk).first()
        return found.version if found else 0

    before = version()
    with transaction.atomic():
        ShakeupEntry.objects.create(
            competition=competition, team=competition.teams.first(), position=0
        )
    written = version()
    assert written > before
    shakeup_discard(competition=competition)
    assert version() > written
