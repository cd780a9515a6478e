"""The bulk leaderboard rebuild: the rows of the per-team refresh, for every team at once,
in a constant number of queries, and the version switch that uses it."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from competitions.models import Competition, LeaderboardEntry, Membership, Score, Submission, Team
from competitions.services.leaderboard import leaderboard_rebuild, leaderboard_refresh_team
from competitions.services.versions import task_version_activate, task_version_create
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]
T0 = timezone.now() - timedelta(days=3)
ROW_FIELDS = (
    "team_id",
    "split",
    "submission_id",
    "task_version",
    "score",
    "sort_key",
    "scores",
    "submitted_at",
    "entries",
    "last_submission_at",
)


def random_board(competition: Competition, teams: int, rng: random.Random) -> list[Team]:
    """`teams` teams with random submissions: tied scores and times, NaN, infinities and
    missing values, selections, banned teams, disqualified, late, invalid and cancelled
    submissions, and scores under another version."""
    prefix = f"{competition.slug}-{rng.randrange(10**6)}"
    users = User.objects.bulk_create([User(username=f"{prefix}-{i}") for i in range(teams)])
    team_rows = Team.objects.bulk_create(
        [
            Team(competition=competition, name=f"{prefix}-{i}", is_banned=rng.random() < 0.1)
            for i in range(teams)
        ]
    )
    Membership.objects.bulk_create(
        Membership(competition=competition, team=t, user=u, accepted_rules_at=T0)
        for t, u in zip(team_rows, users, strict=True)
    )
    phase = competition.phases.get()
    subs: list[Submission] = []
    for team, user in zip(team_rows, users, strict=True):
        for _ in range(rng.randrange(0, 9)):
            status = rng.choice(["scored"] * 6 + ["failed", "cancelled", "queued"])
            subs.append(
                Submission(
                    competition=competition,
                    phase=phase,
                    team=team,
                    submitter=user,
                    file="submissions/fake.csv",
                    original_name="p.csv",
                    sha256="0" * 64,
                    size=1,
                    status=status,
                    failure="invalid" if status == "failed" and rng.random() < 0.5 else "",
                    is_late=rng.random() < 0.1,
                    is_disqualified=rng.random() < 0.1,
                    is_selected=status == "scored" and rng.random() < 0.15,
                    task_version=1,
                    # Few distinct times, so equal scores often tie on time too.
                    created_at=T0 + timedelta(minutes=rng.randrange(6)),
                )
            )
    Submission.objects.bulk_create(subs)
    values = [0.5, 0.75, 0.9, 1.0, float("nan"), float("inf"), float("-inf"), None]
    scores = []
    for sub in subs:
        if sub.status != "scored":
            continue
        for version in (1, 2):
            for split in ("public", "private"):
                if rng.random() < 0.05:
                    continue  # a split without scores
                primary = rng.choice(values) if rng.random() < 0.3 else rng.choice(values[:4])
                scores.append(
                    Score(
                        submission=sub,
                        task_version=version,
                        split=split,
                        metric=competition.task.primary_metric,
                        value=primary,
                    )
                )
                scores.append(
                    Score(
                        submission=sub,
                        task_version=version,
                        split=split,
                        metric="accuracy",
                        value=round(rng.random(), 1),
                    )
                )
    Score.objects.bulk_create(scores)
    return team_rows


def board_rows(competition: Competition) -> list[tuple]:
    rows = LeaderboardEntry.objects.filter(competition=competition).values_list(*ROW_FIELDS)
    return sorted(rows, key=lambda r: (r[0], r[1]))


def per_team_rows(competition: Competition) -> list[tuple]:
    LeaderboardEntry.objects.filter(competition=competition).delete()
    for team in Team.objects.filter(competition=competition):
        leaderboard_refresh_team(team=team)
    return board_rows(competition)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("metric", ["roc_auc", "log_loss"])
def test_the_rebuild_writes_exactly_the_rows_of_the_per_team_refresh(seed, metric):
    rng = random.Random(seed)
    competition = factories.make_competition(primary_metric=metric)
    competition.selection_limit = rng.choice([1, 2])
    competition.save(update_fields=["selection_limit"])
    random_board(competition, 60, rng)
    expected = per_team_rows(competition)
    LeaderboardEntry.objects.filter(competition=competition).delete()

    assert leaderboard_rebuild(competition=competition) == 60

    rebuilt = board_rows(competition)
    assert rebuilt == expected
    # The random board covers what it means to: ranked and unranked teams, both splits.
    ranked_teams = {r[0] for r in rebuilt}
    assert 10 < len(ranked_teams) < 60
    assert {r[1] for r in rebuilt} == {"public", "private"}
    assert all(math.isfinite(r[4]) for r in rebuilt)


def test_the_rebuild_replaces_stale_rows_and_drops_banned_teams():
    rng = random.Random(42)
    competition = factories.make_competition()
    teams = random_board(competition, 30, rng)
    per_team_rows(competition)
    banned = next(t for t in teams if LeaderboardEntry.objects.filter(team=t).exists())
    Team.objects.filter(pk=banned.pk).update(is_banned=True)
    # Stale: the rows of another version.
    LeaderboardEntry.objects.filter(competition=competition).update(task_version=7, score=-1)
    expected = per_team_rows(competition)
    LeaderboardEntry.objects.filter(competition=competition).update(task_version=7, score=-1)

    leaderboard_rebuild(competition=competition)

    assert board_rows(competition) == expected
    assert not LeaderboardEntry.objects.filter(team=banned).exists()


def test_the_rebuild_leaves_other_competitions_boards_alone():
    rng = random.Random(3)
    competition = factories.make_competition()
    other = factories.make_competition(slug="other")
    random_board(competition, 10, rng)
    random_board(other, 10, rng)
    expected_other = per_team_rows(other)

    leaderboard_rebuild(competition=competition)

    assert board_rows(other) == expected_other


def _switch_queries(teams: int, rescore: bool) -> tuple[int, int, int]:
    """(other statements, inserts of board rows, inserts of outbox messages) of a switch:
    the bulk inserts, whose statements SQLite splits in batches (it caps their parameters)."""
    rng = random.Random(teams)
    competition = factories.make_competition(slug=f"c{teams}-{int(rescore)}")
    random_board(competition, teams, rng)
    task = competition.task
    version = task_version_create(task=task, note="v2")
    with CaptureQueriesContext(connection) as ctx:
        task_version_activate(task=task, number=version.number, rescore=rescore)
    task.refresh_from_db()
    assert task.version == 2
    if rescore:
        finished = Submission.objects.filter(
            competition=competition, status__in=["scored", "failed"]
        )
        assert not finished.exists()
        assert Submission.objects.filter(competition=competition, task_version=2).exists()
    else:
        assert board_rows(competition) == per_team_rows(competition)
    sql = [q["sql"] for q in ctx.captured_queries]
    inserts = sum(s.startswith('INSERT INTO "competitions_leaderboardentry"') for s in sql)
    outbox = sum(s.startswith('INSERT INTO "competitions_outboxmessage"') for s in sql)
    return len(sql) - inserts - outbox, inserts, outbox


@pytest.mark.parametrize("rescore", [False, True])
def test_a_version_switch_takes_the_same_number_of_queries_for_10_and_100_teams(rescore):
    small = _switch_queries(10, rescore)
    large = _switch_queries(100, rescore)

    assert small[0] == large[0]
    if connection.vendor == "postgresql":
        assert small[2] == large[2]
    else:  # a rescore enqueues one message per submission, ~160 per batch on SQLite
        assert small[2] <= large[2] <= small[2] + 2
    # 25: with the read of the intervals a rebuild keeps, and the worker's task enqueued;
    # and the reference rows: the version's results and the boards' copy read, the worker
    # that makes them asked for (services/references.py); 26: the suites holding the task
    # looked up (competitions.signals.ranking_changed, suites/cells.py).
    assert large[0] + small[2] <= 26
    if connection.vendor == "postgresql":
        assert small[1] == large[1] == 1
    else:  # SQLite caps a statement's parameters: the rows go in batches of ~90
        assert small[1] <= large[1] <= 3


def test_a_version_switch_rebuilds_the_board_from_the_scores_under_that_version():
    rng = random.Random(11)
    competition = factories.make_competition()
    random_board(competition, 40, rng)
    per_team_rows(competition)
    v1 = board_rows(competition)
    task = competition.task
    task_version_create(task=task, note="v2")

    task_version_activate(task=task, number=2)

    v2 = board_rows(competition)
    assert v2 != v1
    assert {r[3] for r in v2} == {2}
    task_version_activate(task=task, number=1)
    assert board_rows(competition) == v1
