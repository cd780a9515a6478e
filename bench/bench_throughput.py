"""Benchmark: small submissions scored per minute by two workers, and upload-to-score latency.

    .venv/bin/python bench/bench_throughput.py [--submissions 40] [--rounds 2] [--scorers docker,in-process]

Two real Celery worker processes (`--pool solo`, queue cpu) on a Redis broker on loopback
and a PostgreSQL database, as in production; nothing eager. The scorers take turns, round
after round (each round starts the workers with that scorer), so load from elsewhere on
the machine falls on both alike. In each round, for each scorer:

1. latency: 3 submissions, one at a time, each waited for: the time from upload (the row's
   created_at) to scored (finished_at). Reported: the median over the rounds. Target:
   within 3 s of upload.
2. throughput: a burst of --submissions / --rounds submissions; submissions scored per
   minute from the first upload to the last score, and the median and 90th percentile
   latency, over the rounds' bursts together.

The submissions are the 10-row task of tests/factories.py, uploaded through
submission_create (the service the API calls). The database and the Redis server (the
broker) are the run's own (bench/benchlib.py), removed at the end: nothing shared is
flushed. Needs PostgreSQL on loopback and redis-server, and for the docker scorer a Docker
engine and the scorer image (--image, else HELDOUT_SCORER_IMAGE, else heldout-scorer:latest).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchlib import (
    private_redis,
    say,
    scratch_database,
    setup_django,
    start_workers,
    stop,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LATENCY_TARGET_S = 3.0
ONE_BY_ONE = 3  # per scorer and round


def submit(competition, user) -> int:
    from competitions.services.submissions import submission_create
    from tests import factories

    upload = factories.upload(factories.perfect_predictions())
    return submission_create(competition=competition, user=user, uploaded_file=upload).pk


def wait_done(ids: list[int], timeout: float) -> list[tuple[float, str, str]]:
    """(upload-to-finish seconds, status, scorer) of each submission once all are done."""
    from competitions.models import Submission

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(
            Submission.objects.filter(pk__in=ids, status__in=["scored", "failed"]).values_list(
                "created_at", "finished_at", "status", "scorer_name", "error_message"
            )
        )
        if len(rows) == len(ids):
            failed = [row[4] for row in rows if row[2] != "scored"]
            if failed:
                raise SystemExit(f"{len(failed)} submission(s) failed, e.g.: {failed[0]}")
            # A finished submission always has finished_at.
            return [
                ((done - made).total_seconds(), status, name)  # type: ignore[operator]
                for made, done, status, name, _ in rows
            ]
        time.sleep(0.05)
    raise SystemExit(f"not all {len(ids)} submissions were scored within {timeout:.0f} s")


def measure_round(
    scorer: str, burst_size: int, args: argparse.Namespace, base_env: dict[str, str], logs: Path
) -> dict:
    """One round of one scorer: latencies one at a time, and a burst."""
    from competitions.services.teams import competition_join
    from tests import factories

    env = {**base_env, "HELDOUT_SCORER": scorer}
    slug = f"bench-{scorer}-{time.monotonic_ns()}"
    total = burst_size + ONE_BY_ONE
    organizer = factories.make_user(f"{slug}-orga", staff=True)
    user = factories.make_user(f"{slug}-user")
    competition = factories.make_competition(slug=slug, organizers=[organizer], daily_limit=total)
    competition_join(competition=competition, user=user, accept_rules=True)
    workers = start_workers(args.workers, env, logs)
    try:
        one_by_one = [wait_done([submit(competition, user)], 120)[0] for _ in range(ONE_BY_ONE)]
        started = time.monotonic()
        ids = [submit(competition, user) for _ in range(burst_size)]
        burst = wait_done(ids, 30 + 10 * burst_size)
        elapsed = time.monotonic() - started
    finally:
        stop(workers)
    return {"one_by_one": one_by_one, "burst": burst, "elapsed": elapsed}


def report(scorer: str, rounds: list[dict], workers: int) -> None:
    one_by_one = [sample for r in rounds for sample in r["one_by_one"]]
    burst = [sample for r in rounds for sample in r["burst"]]
    names = {name for _, _, name in one_by_one + burst}
    latency = statistics.median(t for t, _, _ in one_by_one)
    waits = sorted(t for t, _, _ in burst)
    elapsed = sum(r["elapsed"] for r in rounds)
    verdict = "met" if latency < LATENCY_TARGET_S else "NOT met"
    say(f"\n{scorer} (scorer recorded: {', '.join(sorted(names))}), {workers} workers")
    say(
        f"  latency, one at a time: median {latency:.2f} s of {len(one_by_one)} "
        f"(target < {LATENCY_TARGET_S} s: {verdict})"
    )
    say(
        f"  bursts of {len(rounds[0]['burst'])} x {len(rounds)}: {len(burst) / elapsed * 60:.0f} "
        f"per minute ({elapsed:.1f} s); latency median {statistics.median(waits):.2f} s, "
        f"p90 {waits[int(0.9 * (len(waits) - 1))]:.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Small submissions per minute, two workers.")
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scorers", default="docker,in-process")
    parser.add_argument(
        "--image", default=os.environ.get("HELDOUT_SCORER_IMAGE", "heldout-scorer:latest")
    )
    args = parser.parse_args()
    scorers = args.scorers.split(",")
    burst_size = max(args.submissions // args.rounds, 1)
    with (
        tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp,
        scratch_database("throughput") as database_url,
        private_redis(Path(tmp)) as redis_url,
    ):
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DJANGO_DEBUG": "false",
            "DJANGO_LOG_LEVEL": "WARNING",
            "HELDOUT_DATA_DIR": tmp,
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": redis_url + "/0",
            "HELDOUT_SCORER_IMAGE": args.image,
        }
        setup_django(env)
        say(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; image {args.image}")
        samples: dict[str, list[dict]] = {scorer: [] for scorer in scorers}
        for _ in range(args.rounds):
            for scorer in scorers:  # interleaved: background load falls on both alike
                samples[scorer].append(measure_round(scorer, burst_size, args, env, Path(tmp)))
        for scorer in scorers:
            report(scorer, samples[scorer], args.workers)
        say(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
