"""The cost of the leaderboard's uncertainty (docs/leaderboard.md), three cases:

1. one new entry's 95 % interval on a 1,000,000-row split, on one core: reading its stored
   pseudo-values, drawing the board's 1,000 resamples (once per worker process, then cached)
   and the bootstrap itself (target: <= 2 s);
2. refreshing the rank intervals of a 10,000-team board after one new entry (target:
   <= 200 ms);
3. the leaderboard page and JSON endpoint with intervals at 10,000 teams / 100,000
   submissions (target: median <= 15 ms, constant queries), against a baseline page in the
   same run: the same URLs served by the code of git revision --today-rev (default
   499a1b3, the page as it stood before it was made faster, intervals shown; checked out
   for the run in a temporary git worktree, removed after), or of the checkout at --today,
   on the same database.

    .venv/bin/python bench/bench_intervals.py [--teams 10000] [--per-team 10] [--rows 1000000]
        [--only entry|ranks|pages ...] [--today-rev REV | --today PATH]

The database is the run's own (bench/benchlib.py), dropped at the end. The pages are
rendered on every request (HELDOUT_BOARD_CACHE=false): bench_board_load.py and
bench_leaderboard.py measure the kept ones. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# One core for the numeric work, as the target says (set before numpy loads its BLAS).
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

ROOT = Path(__file__).resolve().parent.parent
# The baseline of case 3: the page before it was made faster (intervals shown already).
BASELINE_REV = "499a1b3"
DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/heldout_bench_intervals"
)
ENV = {
    "DATABASE_URL": DB_URL,
    "DJANGO_SETTINGS_MODULE": "config.settings.test",
    "CELERY_BROKER_URL": "memory://",  # the worker's tasks are run here, by hand
    "HELDOUT_BOARD_CACHE": "false",  # what rendering a board with intervals costs
}


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _median_ms(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def one_entry_on_a_large_split(rows: int) -> None:
    import numpy as np

    from scoring.influence import RowInfluence, influence_dump, influence_load
    from scoring.statistics import BootstrapPlan, bootstrap_interval

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rng = np.random.default_rng(1)
    values = (rng.random(rows) < 0.8).astype(np.float32)
    stored = influence_dump({"public": RowInfluence(values, metric="accuracy")})

    started = time.perf_counter()
    loaded = influence_load(stored)["public"].values
    plan = BootstrapPlan(rows=rows, seed=1, resamples=1_000)
    low, high = bootstrap_interval(loaded, plan)
    cold = time.perf_counter() - started
    warm, _ = _median_ms(
        lambda: bootstrap_interval(influence_load(stored)["public"].values, plan), 5
    )
    _say(
        f"1. one entry, {rows:,} rows, 1,000 resamples, one core: {cold:.2f} s with the plan "
        f"drawn, {warm / 1000:.3f} s with it cached (target <= 2 s); interval "
        f"[{low:.5f}, {high:.5f}] around {values.mean():.5f}"
    )


def _setup_database(teams: int, per_team: int):
    sys.path.insert(0, str(ROOT / "bench"))
    from benchlib import setup_django

    setup_django(ENV)
    import random

    from bench_leaderboard import _teams_and_submissions
    from django.contrib.auth.models import User

    from competitions.models import Score
    from competitions.services.leaderboard import leaderboard_rebuild
    from tests import factories

    organizer = User.objects.create_user("organizer")
    competition = factories.make_competition(slug="bench", organizers=[organizer])
    rng = random.Random(7)
    _teams, subs = _teams_and_submissions(competition, teams, per_team, rng)
    Score.objects.bulk_create(
        [
            # Rounded so that many teams tie, as they do on real boards.
            Score(submission=s, task_version=1, split=split, metric=metric, value=value)
            for s in subs
            for split, value in (
                ("public", round(rng.random(), 3)),
                ("private", round(rng.random(), 3)),
            )
            for metric in ("roc_auc", "accuracy")
        ],
        batch_size=10_000,
    )
    leaderboard_rebuild(competition=competition)  # the board in one go, as a version switch
    _say(f"populated {teams:,} teams, {len(subs):,} submissions")
    return competition


def _intervals_fill(competition) -> None:
    """Every row an interval around its score, as the worker leaves them, in one statement."""
    from django.db import connection

    from competitions.models import LeaderboardEntry
    from competitions.services.intervals import board_ranks_refresh, board_statistics_get

    for split in ("public", "private"):
        board_statistics_get(competition_id=competition.pk, split=split)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {LeaderboardEntry._meta.db_table}
                SET ci_low = score - 0.02 - random() * 0.03, ci_high = score + 0.02 + random() * 0.03,
                    interval_submission_id = submission_id
                WHERE competition_id = %s""",
            [competition.pk],
        )
    for split in ("public", "private"):
        board_ranks_refresh(competition=competition, split=split)


def _vacuum() -> None:
    """The tables as autovacuum leaves them a minute after the bulk writes above (every row
    written three times): without it, on a server with autovacuum off, the board's count
    reads every row's heap page (5-10 ms) instead of its index only."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def rank_refresh_after_one_entry(competition, repeats: int) -> None:
    from competitions.models import LeaderboardEntry
    from competitions.services.intervals import board_ranks_refresh

    board = LeaderboardEntry.objects.filter(competition=competition, split="public")
    ids = list(board.order_by("pk").values_list("pk", flat=True)[: repeats + 1])

    def one_new_entry(i: int) -> float:
        # A new best: the row jumps to the top, every other row's plausible ranks move.
        top = 1.5 + i
        LeaderboardEntry.objects.filter(pk=ids[i]).update(
            score=top, sort_key=top, ci_low=top - 0.01, ci_high=top + 0.01
        )
        started = time.perf_counter()
        board_ranks_refresh(competition=competition, split="public")
        return (time.perf_counter() - started) * 1000

    times = sorted(one_new_entry(i) for i in range(repeats))
    _say(
        f"2. rank intervals of {board.count():,} teams after one new entry: median "
        f"{statistics.median(times):.1f} ms, max {times[-1]:.1f} ms (target <= 200 ms)"
    )


CASES = ("entry", "ranks", "pages")
PAGES = {
    "HTML page 1": "/c/bench/leaderboard/",
    "HTML page 20": "/c/bench/leaderboard/?page=20",
    "JSON page 1 (100 rows)": "/api/v1/competitions/bench/leaderboard/",
}


def measure_pages(repeats: int) -> dict[str, tuple[float, float, int]]:
    """Median and p95 ms and the query count of each page, with the code on sys.path."""
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    results = {}
    for name, url in PAGES.items():

        def get(url: str = url) -> None:
            response = client.get(url)
            assert response.status_code == 200, response.content[:300]

        statements: list[str] = []

        def counted(execute, sql, params, many, context, statements=statements):
            statements.append(sql)
            return execute(sql, params, many, context)

        # A wrapper, not the query log: the request resets the log and may reconnect.
        with connection.execute_wrapper(counted):
            get()
        median, p95 = _median_ms(get, repeats)
        results[name] = (median, p95, len(statements))
    return results


def _today(repeats: int, today: Path) -> dict[str, list]:
    body = subprocess.run(
        [sys.executable, __file__, "--measure-pages-only", "--repeats", str(repeats)],
        cwd=today,
        env={**os.environ, **ENV, "BENCH_CODE_ROOT": str(today)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(body.strip().splitlines()[-1])


@contextlib.contextmanager
def baseline_checkout(path: Path | None, rev: str) -> Iterator[Path]:
    """`path`, or `rev` checked out in a temporary git worktree of this repository (removed
    at the end: nothing else of the repository is touched)."""
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="bench-intervals-baseline-") as parent:
        tree = Path(parent) / "tree"
        git = ["git", "-C", str(ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", "-q", str(tree), rev], check=True)
        try:
            yield tree
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=False)


def pages_against_today(repeats: int, today: Path) -> None:
    """Today's pages, ours, today's again: the machine's load drifts between the runs."""
    before = _today(repeats, today)
    ours = measure_pages(repeats)
    after = _today(repeats, today)
    from django.test import Client

    html = Client(HTTP_HOST="localhost").get("/c/bench/leaderboard/").content.decode()
    assert "≈ #1" in html, "the page shows no tie with the leader"
    assert "95 % interval" in html, "the page shows no intervals"
    _say(f"3. pages, intervals shown vs the baseline's, same database, {repeats} requests each:")
    _say(
        f"   {'page':24} {'median ms':>10} {'p95 ms':>8} {'queries':>8} | "
        "baseline before, after: median ms, queries"
    )
    for name, (median, p95, queries) in ours.items():
        _say(
            f"   {name:24} {median:10.1f} {p95:8.1f} {queries:8d} | "
            f"{before[name][0]:.1f}, {after[name][0]:.1f}, {after[name][2]}"
        )
    _say("   target: median <= 15 ms with intervals; queries: the baseline's")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teams", type=int, default=10_000)
    parser.add_argument("--per-team", type=int, default=10)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--today", type=Path, help="a checkout whose pages are the baseline")
    parser.add_argument("--today-rev", default=BASELINE_REV, help="else this git revision's")
    parser.add_argument(
        "--only",
        action="append",
        choices=CASES,
        help="run only this case (1, 2, 3 in turn; repeatable); the database is made for 2 and 3",
    )
    parser.add_argument("--measure-pages-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_pages_only:  # the baseline's side: another checkout's code, same database
        sys.path.insert(0, os.environ["BENCH_CODE_ROOT"])
        os.environ.update(ENV)
        import django

        django.setup()
        _say(json.dumps(measure_pages(args.repeats)))
        return
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from benchlib import scratch_database

    cases = args.only or CASES
    if "entry" in cases:
        one_entry_on_a_large_split(args.rows)
    if "ranks" not in cases and "pages" not in cases:
        return
    with scratch_database("intervals") as url:
        # Here and in the process that serves today's pages (which reads it again).
        os.environ["BENCH_DATABASE_URL"] = ENV["DATABASE_URL"] = url
        competition = _setup_database(args.teams, args.per_team)
        _intervals_fill(competition)
        if "ranks" in cases:
            rank_refresh_after_one_entry(competition, repeats=10)
        if "pages" in cases:
            _vacuum()
            with baseline_checkout(args.today, args.today_rev) as today:
                pages_against_today(args.repeats, today)


if __name__ == "__main__":
    main()
