"""Leaderboard endpoint with 10,000 teams and 100,000 scored submissions on PostgreSQL.

Prints median and p95 latency and the query count of the leaderboard endpoint (JSON first
page, page 50, the whole board as CSV) as rendered on each request (HELDOUT_BOARD_CACHE
off), and of the first page and the CSV as kept for the board's version
(competitions/boardcache.py), against a baseline measured in the same run: ranking straight
from every submission's score on each request, as platforms that don't keep a leaderboard
table do. The cases take turns, one call each, --repeats times, so load from elsewhere on
the machine falls on all alike. Page 50 is checked to hold its 100 rows.

    .venv/bin/python bench/bench_leaderboard.py [--teams 10000] [--per-team 10]

The database is the run's own (bench/benchlib.py), dropped at the end.
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

from benchlib import scratch_database, setup_django

if TYPE_CHECKING:
    from collections.abc import Callable

    from competitions.models import Competition, Submission, Team

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PAGE_SIZE = 100  # the endpoint's default


def _setup_django(database_url: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    setup_django({"DATABASE_URL": database_url})


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


def _interleaved(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple]:
    """(median ms, p95 ms, queries of one call) of each case; the cases take turns."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for fn in cases.values():
        fn()  # warm-up (and, for the kept cases, the one rendering)
    times: dict[str, list[float]] = {name: [] for name in cases}
    queries: dict[str, int] = {}
    for _ in range(repeats):
        for name, fn in cases.items():
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
            queries[name] = len(ctx.captured_queries)
    results = {}
    for name, samples in times.items():
        samples.sort()
        p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
        results[name] = (statistics.median(samples) * 1000, p95 * 1000, queries[name])
    return results


def _cases(competition: Competition, teams: int) -> dict[str, Callable[[], object]]:
    from django.test import Client, override_settings

    client = Client(HTTP_HOST="localhost")
    url = f"/api/v1/competitions/{competition.slug}/leaderboard/"

    def get(path: str, accept: str = "application/json", *, kept: bool, rows: int | None = None):
        def call():
            with override_settings(HELDOUT_BOARD_CACHE=kept):
                response = client.get(path, HTTP_ACCEPT=accept)
            assert response.status_code == 200, response.content[:300]
            if rows is not None:
                assert len(response.json()["results"]) == rows, path
            return response

        return call

    first = get(url, kept=False)().json()
    assert first["count"] == teams, first["count"]
    return {
        "baseline: rank from all scores (first 100)": lambda: _baseline(competition),
        "rendered JSON, page 1 (100 rows)": get(url, kept=False, rows=PAGE_SIZE),
        "rendered JSON, page 50 (100 rows)": get(url + "?page=50", kept=False, rows=PAGE_SIZE),
        "rendered CSV, whole board": get(url + "?format=csv", "*/*", kept=False),
        "kept JSON, page 1": get(url, kept=True, rows=PAGE_SIZE),
        "kept CSV, whole board": get(url + "?format=csv", "*/*", kept=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teams", type=int, default=10_000)
    parser.add_argument("--per-team", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    if args.teams < 50 * PAGE_SIZE:
        parser.error(f"--teams must be at least {50 * PAGE_SIZE}: page 50 must hold rows")
    with scratch_database("leaderboard") as database_url:
        _setup_django(database_url)
        competition = _populate(args.teams, args.per_team)
        results = _interleaved(_cases(competition, args.teams), args.repeats)
    print(f"{'case':45} {'median ms':>10} {'p95 ms':>8} {'queries':>8}")
    for name, (median, p95, queries) in results.items():
        print(f"{name:45} {median:10.1f} {p95:8.1f} {queries:8d}")
    base = results["baseline: rank from all scores (first 100)"][0]
    page1 = results["rendered JSON, page 1 (100 rows)"][0]
    print(f"page 1 is {base / page1:.1f}x faster than the baseline (target: median < 50 ms)")


if __name__ == "__main__":
    main()
