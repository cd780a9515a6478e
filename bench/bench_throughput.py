"""Benchmark: small submissions scored per minute by two workers, and upload-to-score latency.

    .venv/bin/python bench/bench_throughput.py [--submissions 40] [--scorers docker,in-process]

Two real Celery worker processes (`--pool solo`, queue cpu) on a Redis broker on loopback
and a PostgreSQL database, as in production; nothing eager. For each scorer:

1. latency: 5 submissions, one at a time, each waited for: the median time from upload
   (the row's created_at) to scored (finished_at). Target: within 3 s of upload.
2. throughput: a burst of --submissions submissions; submissions scored per minute from
   the first upload to the last score, and the median and 90th percentile latency.

The submissions are the 10-row task of tests/factories.py, uploaded through
submission_create (the service the API calls). The database --database-url is dropped
and created again, and the Redis database of --broker-url is flushed, at the start.
Needs PostgreSQL and Redis on loopback, and for the docker scorer a Docker engine and the
scorer image (--image, else HELDOUT_SCORER_IMAGE, else heldout-scorer:latest).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import recreate_database, say, setup_django

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LATENCY_TARGET_S = 3.0


def start_workers(count: int, env: dict[str, str], logs: Path) -> list[subprocess.Popen]:
    workers = []
    for n in range(count):
        command = [
            sys.executable, "-m", "celery", "-A", "config.celery_app", "worker", "-Q", "cpu",
            "--pool", "solo", "-n", f"bench{n}@%h", "--without-mingle", "--without-gossip",
            "--without-heartbeat", "-l", "INFO",
        ]  # fmt: skip
        with (logs / f"worker-{n}.log").open("wb") as out:
            worker = subprocess.Popen(
                command, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
            )
        workers.append(worker)
    deadline = time.monotonic() + 60
    for n, worker in enumerate(workers):
        log = logs / f"worker-{n}.log"
        while "ready." not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker {n} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


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


def measure(scorer: str, args: argparse.Namespace, base_env: dict[str, str], logs: Path) -> None:
    from competitions.services.teams import competition_join
    from tests import factories

    env = {**base_env, "HELDOUT_SCORER": scorer}
    slug = f"bench-{scorer}-{int(time.time())}"
    total = args.submissions + 5
    organizer = factories.make_user(f"{slug}-orga", staff=True)
    user = factories.make_user(f"{slug}-user")
    competition = factories.make_competition(slug=slug, organizers=[organizer], daily_limit=total)
    competition_join(competition=competition, user=user, accept_rules=True)
    workers = start_workers(args.workers, env, logs)
    try:
        one_by_one = [wait_done([submit(competition, user)], 120)[0] for _ in range(5)]
        started = time.monotonic()
        ids = [submit(competition, user) for _ in range(args.submissions)]
        burst = wait_done(ids, 30 + 10 * args.submissions)
        elapsed = time.monotonic() - started
    finally:
        stop_workers(workers)
    names = {name for _, _, name in one_by_one + burst}
    latency = statistics.median(t for t, _, _ in one_by_one)
    waits = sorted(t for t, _, _ in burst)
    verdict = "met" if latency < LATENCY_TARGET_S else "NOT met"
    say(f"\n{scorer} (scorer recorded: {', '.join(sorted(names))}), {args.workers} workers")
    say(
        f"  latency, one at a time: median {latency:.2f} s (target < {LATENCY_TARGET_S} s: {verdict})"
    )
    say(
        f"  burst of {args.submissions}: {args.submissions / elapsed * 60:.0f} per minute "
        f"({elapsed:.1f} s); latency median {statistics.median(waits):.2f} s, "
        f"p90 {waits[int(0.9 * (len(waits) - 1))]:.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Small submissions per minute, two workers.")
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scorers", default="docker,in-process")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/heldout_bench_throughput"
    )
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument(
        "--image", default=os.environ.get("HELDOUT_SCORER_IMAGE", "heldout-scorer:latest")
    )
    args = parser.parse_args()
    recreate_database(args.database_url)
    import redis

    redis.Redis.from_url(args.broker_url).flushdb()
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DJANGO_DEBUG": "false",
            "DJANGO_LOG_LEVEL": "WARNING",
            "HELDOUT_DATA_DIR": tmp,
            "DATABASE_URL": args.database_url,
            "CELERY_BROKER_URL": args.broker_url,
            "HELDOUT_SCORER_IMAGE": args.image,
        }
        setup_django(env)
        say(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; image {args.image}")
        for scorer in args.scorers.split(","):
            measure(scorer, args, env, Path(tmp))
        say(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
