"""Switching the ranked task version with 10,000 teams and 100,000 scored submissions on
PostgreSQL: task_version_activate (one transaction, leaderboard_rebuild: a constant number
of queries) against the per-team refresh it replaced (about 18 queries per team, not in
one transaction), interleaved in the same run.

Every submission has scores under versions 1 and 2; each round switches 1 -> 2 with each
method from the same board (and back with the new one), checks that both leave the same
board, and prints the wall time and the queries of one switch.

    .venv/bin/python bench/bench_version_switch.py [--teams 10000] [--per-team 10] [--rounds 1]

The database is the run's own (bench/benchlib.py), dropped at the end.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_leaderboard import _setup_django, _teams_and_submissions
from benchlib import scratch_database

if TYPE_CHECKING:
    from competitions.models import Competition, Task


def _populate(teams: int, per_team: int) -> Competition:
    from django.contrib.auth.models import User

    from competitions.models import Score
    from competitions.services.versions import task_version_create, task_version_ensure
    from tests import factories

    started = time.perf_counter()
    organizer = User.objects.create_user("organizer")
    competition = factories.make_competition(slug="bench", organizers=[organizer])
    task_version_ensure(task=competition.task)
    task_version_create(task=competition.task, note="bench: version 2")
    rng = random.Random(7)
    _, subs = _teams_and_submissions(
        competition, teams, per_team, rng, selected=lambda k: k == 0 and rng.random() < 0.2
    )
    scores: list[Score] = []
    for s in subs:
        for version in (1, 2):
            # Rounded so that many teams tie, as they do on real boards.
            for split in ("public", "private"):
                value = round(rng.random(), 3)
                for metric in ("roc_auc", "accuracy"):
                    scores.append(
                        Score(
                            submission=s,
                            task_version=version,
                            split=split,
                            metric=metric,
                            value=value,
                        )
                    )
        if len(scores) >= 50_000:
            Score.objects.bulk_create(scores)
            scores = []
    Score.objects.bulk_create(scores)
    print(
        f"populated {teams} teams, {len(subs)} submissions, "
        f"{Score.objects.count()} scores in {time.perf_counter() - started:.0f} s"
    )
    return competition


def _per_team_switch(task: Task, number: int) -> None:
    """The version switch as it was: the task's row, then every team refreshed one by one."""
    from competitions.models import Task, TaskVersion, Team
    from competitions.services.leaderboard import leaderboard_refresh_team

    version = TaskVersion.objects.get(task=task, number=number)
    Task.objects.filter(pk=task.pk).update(
        version=number,
        ground_truth=version.ground_truth.name,
        ground_truth_sha256=version.ground_truth_sha256,
        ground_truth_size=version.ground_truth.size,
    )
    task.refresh_from_db()
    for team in Team.objects.filter(competition_id=task.competition_id):
        leaderboard_refresh_team(team=team)


def _bulk_switch(task: Task, number: int) -> None:
    from competitions.services.versions import task_version_activate

    task_version_activate(task=task, number=number)


def _board(competition: Competition) -> list[tuple]:
    from competitions.models import LeaderboardEntry

    return sorted(
        LeaderboardEntry.objects.filter(competition=competition).values_list(
            "team_id", "split", "submission_id", "task_version", "score", "entries"
        )
    )


def _timed(fn, task: Task, number: int) -> tuple[float, int]:
    from django.db import connection

    count = 0

    def counted(execute, sql, params, many, context):
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counted):
        t0 = time.perf_counter()
        fn(task, number)
        elapsed = time.perf_counter() - t0
    return elapsed, count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teams", type=int, default=10_000)
    parser.add_argument("--per-team", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with scratch_database("version_switch") as database_url:
        _setup_django(database_url)
        competition = _populate(args.teams, args.per_team)
        task = competition.task
        _bulk_switch(task, 1)  # warm-up, and the board of version 1 to start from

        before, after = "per-team refresh (before)", "leaderboard_rebuild"
        times: dict[str, list[float]] = {before: [], after: []}
        queries: dict[str, int] = {}

        def switch(name: str, fn, number: int) -> list[tuple]:
            elapsed, queries[name] = _timed(fn, task, number)
            times[name].append(elapsed)
            return _board(competition)

        for _ in range(args.rounds):
            # Interleaved: both switch 1 -> 2 from the same board, and must leave the same one.
            expected = switch(after, _bulk_switch, 2)
            switch(after, _bulk_switch, 1)
            got = switch(before, _per_team_switch, 2)
            assert got == expected, "the two methods left different boards"
            switch(after, _bulk_switch, 1)
    print(f"{'switch of the ranked version':30} {'median s':>9} {'max s':>7} {'queries':>8}")
    for name, samples in times.items():
        print(f"{name:30} {statistics.median(samples):9.2f} {max(samples):7.2f} {queries[name]:8d}")
    speedup = statistics.median(times[before]) / statistics.median(times[after])
    print(f"{args.teams} teams: leaderboard_rebuild is {speedup:.1f}x faster (target >= 10x)")


if __name__ == "__main__":
    main()
