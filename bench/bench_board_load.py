"""Benchmark: reads that hold under load. --clients clients read a leaderboard of --teams
teams while a worker scores submissions, with the board cache off (every request renders
its board: the baseline) and on (competitions/boardcache.py), interleaved in one run.

    .venv/bin/python bench/bench_board_load.py [--teams 10000] [--clients 50] [--seconds 15]
        [--rounds 3] [--submit-every 0.5]

As in production, on loopback: two gunicorn servers (config/gunicorn.py: 2 workers x 8
threads), one with HELDOUT_BOARD_CACHE=false; one Celery worker (solo pool, in-process
scorer); a PostgreSQL database and a redis-server of the run's own (the broker, and the
shared cache as HELDOUT_CACHE_URL), all removed at the end (bench/benchlib.py).

The load is wrk (Debian's package; `bash deploy/system-deps.sh bench` installs it):
--clients keep-alive connections on 2 threads, each asking in turn for the page (anonymous)
and the JSON, pages 1 and 2, for --seconds per case. Meanwhile a thread uploads a
submission every --submit-every seconds through submission_create (the service the API
calls) and the worker scores it: each score moves the board to a new version (and so does
each interval the worker draws afterwards), so the cache is measured while the board
changes, not idle. Before the first case the worker draws the populated rows' intervals. The cases take turns, round after round
(the order alternating), so load from elsewhere on the machine falls on both alike.

Reported per case: the medians over the rounds of requests per second, and of wrk's per-
request latency percentiles p50 and p95, failed requests (any but 200), and how many
submissions were scored and board versions passed during the case.
Targets, cache on: >= 300 requests/s and p95 <= 100 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import requests
from benchlib import (
    private_redis,
    say,
    scratch_database,
    setup_django,
    start_gunicorn,
    start_workers,
    stop,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_RPS = 300
TARGET_P95_MS = 100
SLUG = "bench"
PATHS = [
    f"/c/{SLUG}/leaderboard/",
    f"/api/v1/competitions/{SLUG}/leaderboard/",
    f"/c/{SLUG}/leaderboard/?page=2",
    f"/api/v1/competitions/{SLUG}/leaderboard/?page=2",
]
# wrk's script: the paths in turn; at the end one line of figures (microseconds).
WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
    i = i + 1
    return wrk.format("GET", paths[(i %% #paths) + 1])
end
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n", summary.requests,
        summary.duration, latency:percentile(50), latency:percentile(95), e.status,
        e.connect + e.read + e.write + e.timeout))
end
"""


def populate(teams: int, submitters: int) -> list:
    """The competition: `teams` one-person teams with a scored submission each (in bulk,
    then one leaderboard_rebuild), and `submitters` users who joined to upload."""
    from django.contrib.auth.models import User
    from django.utils import timezone

    from competitions.models import Membership, Score, Submission, Team
    from competitions.services.leaderboard import leaderboard_rebuild
    from competitions.services.teams import competition_join
    from tests import factories

    organizer = factories.make_user("organizer", staff=True)
    competition = factories.make_competition(slug=SLUG, organizers=[organizer], daily_limit=100_000)
    phase, now, rng = competition.phases.get(), timezone.now(), random.Random(7)
    users = User.objects.bulk_create([User(username=f"user{i:05d}") for i in range(teams)])
    team_rows = Team.objects.bulk_create(
        [Team(competition=competition, name=f"team{i:05d}") for i in range(teams)]
    )
    Membership.objects.bulk_create(
        Membership(competition=competition, team=t, user=u, accepted_rules_at=now)
        for t, u in zip(team_rows, users, strict=True)
    )
    subs = Submission.objects.bulk_create(
        Submission(
            competition=competition,
            phase=phase,
            team=t,
            submitter=u,
            file=f"submissions/x/{t.pk}.csv",
            original_name="p.csv",
            sha256="0" * 64,
            size=100,
            status=Submission.Status.SCORED,
            task_version=1,
            created_at=now - timedelta(minutes=rng.randrange(100_000)),
        )
        for t, u in zip(team_rows, users, strict=True)
    )
    Score.objects.bulk_create(
        Score(submission=s, task_version=1, split=split, metric=metric, value=value)
        for s in subs
        for split in ("public", "private")
        for value in [round(rng.random(), 3)]
        for metric in ("roc_auc", "accuracy")
    )
    leaderboard_rebuild(competition=competition)
    people = [factories.make_user(f"submitter{n}") for n in range(submitters)]
    for person in people:
        competition_join(competition=competition, user=person, accept_rules=True)
    return people


class Submitter(threading.Thread):
    """Uploads a submission every `every` seconds while `running` is set, by each person in
    turn, through the service the API calls."""

    def __init__(self, people: list, every: float):
        super().__init__(daemon=True)
        self.people, self.every = people, every
        self.running = threading.Event()
        self.stopped = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from competitions.models import Competition
        from competitions.services.submissions import submission_create
        from tests import factories

        competition = Competition.objects.get(slug=SLUG)
        n = 0
        try:
            while not self.stopped.is_set():
                if not self.running.wait(timeout=0.1):
                    continue
                upload = factories.upload(factories.perfect_predictions())
                person = self.people[n % len(self.people)]
                submission_create(competition=competition, user=person, uploaded_file=upload)
                n += 1
                time.sleep(self.every)
        finally:
            connection.close()


def counters() -> tuple[int, int, int]:
    """(submissions uploaded by the submitters so far, of which scored, the board's version)."""
    from competitions.models import BoardVersion, Competition, Submission

    theirs = Submission.objects.filter(submitter__username__startswith="submitter")
    competition = Competition.objects.get(slug=SLUG)
    version = BoardVersion.objects.filter(competition_id=competition.pk).first()
    return (
        theirs.count(),
        theirs.filter(status=Submission.Status.SCORED).count(),
        version.version if version else 0,
    )


def quiet_board(timeout: float = 600) -> None:
    """Wait until the worker has drawn the intervals of every row the bulk population made
    (one write per row, each a new board version): then only the submissions move it."""
    deadline = time.monotonic() + timeout
    last, still = counters()[2], 0
    while still < 3 and time.monotonic() < deadline:
        time.sleep(1)
        version = counters()[2]
        still = still + 1 if version == last else 0
        last = version
    say(f"board quiet at version {last}")


def run_wrk(base: str, args: argparse.Namespace, script: Path) -> dict:
    command = ["wrk", "-t2", f"-c{args.clients}", f"-d{args.seconds}s", "--timeout", "10s"]
    command += ["-s", str(script), base + PATHS[0]]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    requests_done, micros, p50, p95, bad_status, socket_errors = map(int, line.split()[1:])
    return {
        "rps": requests_done / (micros / 1e6),
        "p50": p50 / 1000,
        "p95": p95 / 1000,
        "failed": bad_status + socket_errors,
        "requests": requests_done,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teams", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--submit-every", type=float, default=0.5)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: bash deploy/system-deps.sh bench installs it")
    with (
        tempfile.TemporaryDirectory(prefix="bench-board-load-") as name,
        scratch_database("board_load") as database_url,
        private_redis(Path(name)) as redis_url,
    ):
        tmp = Path(name)
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DJANGO_DEBUG": "false",
            "DJANGO_LOG_LEVEL": "WARNING",
            "HELDOUT_DATA_DIR": str(tmp),
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": redis_url + "/0",
            "HELDOUT_CACHE_URL": redis_url + "/1",
            "HELDOUT_SCORER": "in-process",
        }
        setup_django(env)
        started = time.perf_counter()
        people = populate(args.teams, submitters=20)
        say(
            f"{args.teams} teams on the board ({time.perf_counter() - started:.0f} s to make); "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
        )
        script = tmp / "paths.lua"
        script.write_text(WRK_SCRIPT % ", ".join(f'"{p}"' for p in PATHS))
        results = measure(args, env, tmp, script, people)
        say(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return report(results, args)


def measure(
    args: argparse.Namespace, env: dict[str, str], tmp: Path, script: Path, people: list
) -> dict[str, list[dict]]:
    processes = start_workers(1, env, tmp)
    servers = {}
    try:
        for case, cache in (("cache off", "false"), ("cache on", "true")):
            proc, base = start_gunicorn(
                {**env, "HELDOUT_BOARD_CACHE": cache}, tmp / f"gunicorn-{cache}.log"
            )
            processes.append(proc)
            servers[case] = base
            for path in PATHS:  # every worker imports the app; nothing measured yet
                for _ in range(4):
                    assert requests.get(base + path, timeout=60).status_code == 200, path
        quiet_board()
        submitter = Submitter(people, args.submit_every)
        submitter.start()
        results: dict[str, list[dict]] = {case: [] for case in servers}
        for n in range(args.rounds):
            order = list(servers) if n % 2 == 0 else list(reversed(servers))
            for case in order:  # interleaved: background load falls on both alike
                before = counters()
                submitter.running.set()
                result = run_wrk(servers[case], args, script)
                submitter.running.clear()
                after = counters()
                result["uploaded"], result["scored"], result["versions"] = (
                    a - b for a, b in zip(after, before, strict=True)
                )
                results[case].append(result)
                say(
                    f"  round {n + 1}, {case}: {result['rps']:.0f} requests/s, "
                    f"p50 {result['p50']:.0f} ms, p95 {result['p95']:.0f} ms, "
                    f"{result['uploaded']} uploaded, {result['scored']} scored, "
                    f"{result['versions']} board versions"
                )
        submitter.stopped.set()
        submitter.join(timeout=30)
    finally:
        stop(processes)
    return results


def report(results: dict[str, list[dict]], args: argparse.Namespace) -> int:
    """The table and the verdict; 0 either way (a missed target is a figure, not a crash)."""
    say(
        f"\n{args.clients} clients, {args.seconds} s per case, medians of {args.rounds} rounds; "
        "a submission uploaded every "
        f"{args.submit_every:g} s and scored meanwhile"
    )
    say(f"{'case':10} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'failed':>7} {'scored':>7}")
    medians = {}
    for case, rounds in results.items():
        m = {k: statistics.median(r[k] for r in rounds) for k in ("rps", "p50", "p95")}
        failed = sum(r["failed"] for r in rounds)
        scored = sum(r["scored"] for r in rounds)
        medians[case] = m
        say(f"{case:10} {m['rps']:7.0f} {m['p50']:7.1f} {m['p95']:7.1f} {failed:7d} {scored:7d}")
    on, off = medians["cache on"], medians["cache off"]
    met = on["rps"] >= TARGET_RPS and on["p95"] <= TARGET_P95_MS
    say(
        f"cache on: {on['rps'] / off['rps']:.1f}x the requests/s of cache off; targets "
        f">= {TARGET_RPS} requests/s and p95 <= {TARGET_P95_MS} ms: {'met' if met else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
