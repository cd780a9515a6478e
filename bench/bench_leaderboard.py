"""Leaderboard endpoint with 10,000 teams and 100,000 scored submissions on PostgreSQL.

Prints median and p95 latency and the query count of the leaderboard endpoint (JSON first
page, a deep page, the whole board as CSV), against a baseline measured in the same run:
ranking straight from every submission's score on each request, as platforms that don't
keep a leaderboard table do.

    .venv/bin/python bench/bench_leaderboard.py [--teams 10000] [--per-team 10]

Uses BENCH_DATABASE_URL (default: postgres://postgres@127.0.0.1:5432/heldout_bench),
dropped and recreated on each run.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from competitions.models import Competition, Submission, Team

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/heldout_bench")


def _recreate_database() -> None:
    import psycopg

    base, name = DB_URL.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def _setup_django() -> None:
    os.environ["DATABASE_URL"] = DB_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _teams_and_submissions(
    competition: Competition,
    teams: int,
    per_team: int,
    rng: random.Random,
    selected: Callable[[int], bool] = lambda k: False,
) -> tuple[list[Team], list[Submission]]:
    """`teams` one-person teams in the competition, each with `per_team` scored submissions
    (their k-th one selected if selected(k)) made at random times, in bulk."""
    from django.contrib.auth.models import User
    from django.utils import timezone

    from competitions.models import Membership, Submission, Team

    phase = competition.phases.get()
    now = timezone.now()
    users = User.objects.bulk_create([User(username=f"user{i:05d}") for i in range(teams)])
    team_objs = Team.objects.bulk_create(
        [Team(competition=competition, name=f"team{i:05d}") for i in range(teams)]
    )
    Membership.objects.bulk_create(
        [
            Membership(competition=competition, team=t, user=u, accepted_rules_at=now)
            for t, u in zip(team_objs, users, strict=True)
        ]
    )
    subs = Submission.objects.bulk_create(
        [
            Submission(
                competition=competition,
                phase=phase,
                team=t,
                submitter=u,
                file=f"submissions/x/{t.pk}-{k}.csv",
                original_name="p.csv",
                sha256="0" * 64,
                size=100,
                status=Submission.Status.SCORED,
                task_version=1,
                is_selected=selected(k),
                created_at=now - timedelta(minutes=rng.randrange(100_000)),
            )
            for t, u in zip(team_objs, users, strict=True)
            for k in range(per_team)
        ],
        batch_size=5000,
    )
    return team_objs, subs


def _populate(teams: int, per_team: int) -> Competition:
    from django.contrib.auth.models import User

    from competitions.models import Score
    from competitions.services.leaderboard import leaderboard_refresh_team
    from tests import factories

    organizer = User.objects.create_user("organizer")
    competition = factories.make_competition(slug="bench", organizers=[organizer])
    rng = random.Random(7)
    team_objs, subs = _teams_and_submissions(competition, teams, per_team, rng)
    scores = []
    for s in subs:
        # Rounded so that many teams tie, as they do on real boards.
        public, private = round(rng.random(), 3), round(rng.random(), 3)
        for split, value in (("public", public), ("private", private)):
            scores.append(
                Score(submission=s, task_version=1, split=split, metric="roc_auc", value=value)
            )
            scores.append(
                Score(submission=s, task_version=1, split=split, metric="accuracy", value=value)
            )
    Score.objects.bulk_create(scores, batch_size=10_000)
    started = time.perf_counter()
    for t in team_objs:
        leaderboard_refresh_team(team=t)
    per_refresh = (time.perf_counter() - started) / len(team_objs)
    print(
        f"populated {teams} teams, {len(subs)} submissions; refresh per scored submission: {per_refresh * 1000:.2f} ms"
    )
    return competition


def _baseline(competition) -> list:
    """Rank from every submission's score on each request."""
    from django.db.models import Max

    from competitions.models import Score

    best = (
        Score.objects.filter(
            submission__competition=competition,
            split="public",
            metric="roc_auc",
            task_version=1,
            submission__status="scored",
            submission__is_disqualified=False,
        )
        .values("submission__team_id", "submission__team__name")
        .annotate(best=Max("value"))
        .order_by("-best")
    )
    rows = []
    rank, prev = 0, None
    for i, row in enumerate(best, start=1):
        if row["best"] != prev:
            rank, prev = i, row["best"]
        rows.append({**row, "rank": rank})
    return rows[:100]


def _measure(fn, repeats: int) -> tuple[float, float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fn()  # warm-up
    times = []
    queries = 0
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        queries = len(ctx.captured_queries)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times) * 1000, p95 * 1000, queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teams", type=int, default=10_000)
    parser.add_argument("--per-team", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    _recreate_database()
    _setup_django()
    competition = _populate(args.teams, args.per_team)

    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    url = f"/api/v1/competitions/{competition.slug}/leaderboard/"

    def get(path, accept="application/json"):
        def call():
            response = client.get(path, HTTP_ACCEPT=accept)
            assert response.status_code == 200, response.content[:300]
            return response

        return call

    first = get(url)().json()
    assert first["count"] == args.teams, first["count"]
    cases = [
        ("baseline: rank from all scores (first 100)", lambda: _baseline(competition)),
        ("endpoint JSON, page 1 (100 rows)", get(url)),
        ("endpoint JSON, page 50 (100 rows)", get(url + "?page=50")),
        ("endpoint CSV, whole board", get(url + "?format=csv", accept="*/*")),
    ]
    print(f"{'case':45} {'median ms':>10} {'p95 ms':>8} {'queries':>8}")
    results = {}
    for name, fn in cases:
        median, p95, queries = _measure(fn, args.repeats)
        results[name] = median
        print(f"{name:45} {median:10.1f} {p95:8.1f} {queries:8d}")
    base = results[cases[0][0]]
    page1 = results[cases[1][0]]
    print(f"page 1 is {base / page1:.1f}x faster than the baseline (target: median < 50 ms)")


if __name__ == "__main__":
    main()
