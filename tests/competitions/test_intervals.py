"""Board intervals: scored for real in process, computed by the worker's service, read back."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.base import ContentFile

from competitions.models import BoardStatistics, LeaderboardEntry, OutboxMessage, Submission
from competitions.selectors import leaderboard_page
from competitions.services.intervals import INTERVALS_TASK, leaderboard_intervals_refresh
from competitions.services.submissions import submission_create
from judging.services import submission_score
from scoring.influence import influence_load
from scoring.scorers import InProcessScorer
from scoring.statistics import DEFAULT_RESAMPLES, DEFAULT_SEED
from tests import factories

pytestmark = pytest.mark.django_db
ROWS = 400


def _truth() -> tuple[str, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = (rng.random(ROWS) < 0.5).astype(int)
    usage = np.where(np.arange(ROWS) % 2 == 0, "Public", "Private")
    text = "id,label,Usage\n" + "".join(
        f"r{i},{y},{u}\n" for i, (y, u) in enumerate(zip(labels, usage, strict=True))
    )
    return text, labels


def board(slug: str = "ci", metric: str = "roc_auc"):
    competition = factories.make_competition(
        slug=slug, primary_metric=metric, daily_limit=50, secondary_metrics=()
    )
    text, labels = _truth()
    task = competition.task
    task.ground_truth.save("truth.csv", ContentFile(text.encode()))
    return competition, labels


def submit(competition, team, labels: np.ndarray, skill: float, seed: int) -> Submission:
    """Scores = skill * label + noise, scored by the real in-process scorer."""
    rng = np.random.default_rng(1000 + seed)  # not the truth's seed: independent noise
    scores = np.clip(skill * labels + rng.random(len(labels)) * (1 - skill), 0, 1)
    text = "id,label\n" + "".join(f"r{i},{s:.4f}\n" for i, s in enumerate(scores))
    user = team.members.first()
    submission = submission_create(
        competition=competition, user=user, uploaded_file=factories.upload(text.encode())
    )
    assert submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    submission.refresh_from_db()
    return submission


def test_scoring_stores_the_primary_metrics_pseudo_values_for_each_split():
    competition, labels = board()
    team = factories.team_for(competition, "ann")
    submission = submit(competition, team, labels, 0.3, 1)
    with submission.influence.open("rb") as handle:
        splits = influence_load(handle.read())
    assert set(splits) == {"public", "private"}
    assert len(splits["public"].values) == ROWS // 2
    assert splits["public"].metric == "roc_auc"
    public = submission.scores.get(split="public", metric="roc_auc").value
    assert float(splits["public"].values.mean(dtype=np.float64)) == pytest.approx(public, rel=1e-5)
    # The change asked a worker for the board's intervals, through the outbox.
    assert OutboxMessage.objects.filter(task=INTERVALS_TASK, args=[competition.pk]).exists()


def test_the_worker_computes_each_entrys_interval_and_the_boards_rank_intervals():
    competition, labels = board()
    skills = {"strong": 0.3, "twin": 0.28, "weak": 0.02}
    for i, (name, skill) in enumerate(skills.items()):
        submit(competition, factories.team_for(competition, name), labels, skill, i)
    assert leaderboard_intervals_refresh(competition_id=competition.pk) == 6
    for entry in LeaderboardEntry.objects.all():
        assert entry.ci_low is not None
        assert entry.ci_high is not None
        assert entry.ci_low <= entry.score <= entry.ci_high
        assert entry.interval_submission_id == entry.submission_id
    rows = {r.team: r for r in leaderboard_page(competition=competition, split="public").rows}
    assert rows["strong"].tied_with_leader
    assert rows["twin"].tied_with_leader
    assert not rows["weak"].tied_with_leader
    assert (rows["weak"].rank_best, rows["weak"].rank_worst) == (3, 3)
    assert (rows["strong"].rank_best, rows["strong"].rank_worst) == (1, 2)
    stats = BoardStatistics.objects.get(competition=competition, split="public")
    assert (stats.seed, stats.resamples, stats.rows) == (DEFAULT_SEED, DEFAULT_RESAMPLES, 200)
    # A second run finds nothing stale.
    assert leaderboard_intervals_refresh(competition_id=competition.pk) == 0


def test_the_leaderboard_page_reads_the_stored_intervals_without_computing():
    competition, labels = board()
    submit(competition, factories.team_for(competition, "ann"), labels, 0.3, 1)
    page = leaderboard_page(competition=competition, split="public")
    assert page.rows[0].ci_low is None  # not computed yet: the page does not compute it
    leaderboard_intervals_refresh(competition_id=competition.pk)
    row = leaderboard_page(competition=competition, split="public").rows[0]
    assert row.ci_low is not None
    assert row.ci_high is not None
    assert row.ci_low < row.score < row.ci_high
    assert row.tied_with_leader
    assert (row.rank_best, row.rank_worst) == (1, 1)


def test_a_new_best_submission_makes_its_rows_interval_stale_until_the_worker_runs():
    competition, labels = board()
    team = factories.team_for(competition, "ann")
    submit(competition, team, labels, 0.1, 1)
    leaderboard_intervals_refresh(competition_id=competition.pk)
    better = submit(competition, team, labels, 0.7, 2)
    entry = LeaderboardEntry.objects.get(team=team, split="public")
    assert entry.submission_id == better.pk
    assert entry.interval_submission_id != better.pk
    # The old submission's interval is not shown for the new one.
    assert leaderboard_page(competition=competition, split="public").rows[0].ci_low is None
    assert leaderboard_intervals_refresh(competition_id=competition.pk) == 2
    entry.refresh_from_db()
    assert entry.interval_submission_id == better.pk
    assert entry.ci_low is not None
    assert entry.ci_low > 0.8


def test_the_json_csv_and_claim_page_carry_the_interval(client, api):
    competition, labels = board()
    submission = submit(competition, factories.team_for(competition, "ann"), labels, 0.3, 1)
    leaderboard_intervals_refresh(competition_id=competition.pk)
    entry = LeaderboardEntry.objects.get(submission=submission, split="public")
    url = f"/api/v1/competitions/{competition.slug}/leaderboard/"

    body = api(None).get(url).json()
    assert body["bootstrap"] == {
        "seed": DEFAULT_SEED,
        "resamples": DEFAULT_RESAMPLES,
        "level": 0.95,
    }
    row = body["results"][0]
    assert (row["ci_low"], row["ci_high"]) == (entry.ci_low, entry.ci_high)
    assert (row["rank_best"], row["rank_worst"], row["tied_with_leader"]) == (1, 1, True)

    csv_text = api(None).get(url, {"format": "csv"}).content.decode()
    header, first = csv_text.splitlines()[:2]
    assert header.endswith(
        "ci_low,ci_high,rank_best,rank_worst,tied_with_leader,normalized_score,reference"
    )
    # No normalized score nor reference: no reference rows were made here.
    assert first.endswith(f"{entry.ci_low},{entry.ci_high},1,1,True,,")

    page = client.get(f"/c/{competition.slug}/entries/{submission.pk}/").content.decode()
    assert f"95 % bootstrap interval: {entry.ci_low:.6g} to {entry.ci_high:.6g}" in page
    assert "statistically tied with the leader" in page
