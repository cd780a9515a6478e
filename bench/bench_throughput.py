"""Benchmark: small submissions scored per minute by two workers, in-process, sandboxed cold
and sandboxed warm, and upload-to-score latency; all in one run, taking turns.

    .venv/bin/python bench/bench_throughput.py [--submissions 40] [--rounds 2]
        [--modes in-process,docker-cold,docker-warm]

Two real Celery worker processes (`--pool solo`) on a Redis broker on loopback and a
PostgreSQL database, as in production; nothing eager. Each round runs every mode in turn on
the same two workers (started again with the mode's settings: HELDOUT_SCORER, and
HELDOUT_SANDBOX_WARM for the sandbox), so a burst of load from elsewhere on the machine
hits them all alike. For each mode and round:

0. warm-up: one submission per worker and one more, unmeasured (imports; a warm scorer's
   start, which each worker process pays once per task);
1. latency: 5 submissions, one at a time, each waited for: the time from upload (the
   row's created_at) to scored (its attempt's finished_at); for the sandboxed warm mode,
   whose target is for a quiet machine, after waiting (150 s at most) for the load
   average to fall to 2, and with the load average read just after these five;
2. throughput: a burst of --submissions submissions; scored per minute from the first
   upload to the last score.

It prints each mode's throughput and median latency over all rounds, then the targets:
sandboxed (warm) throughput at least 50 % of in-process, and sandboxed upload to scored
at most 0.5 s at a load average of at most 2 (printed with it: a busy machine is no
verdict).

The submissions are the 10-row task of tests/factories.py, uploaded through
submission_create (the service the API calls), one competition per mode (a task version
records the scorer that first scored it). The run makes its own database (a fresh
name on the server of --database-url), its own queue on the broker's Redis database and
its own deployment id (labels on its containers), and drops the database at the end;
nothing else is flushed or removed. Needs PostgreSQL and Redis on loopback, a Docker engine
and the scorer image (--image, else HELDOUT_SCORER_IMAGE, else heldout-scorer:latest).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from benchlib import say, setup_django, start_workers, stop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LATENCY_TARGET_S = 0.5
LOAD_FOR_LATENCY = 2.0
THROUGHPUT_TARGET = 0.5  # sandboxed (warm) per minute over in-process per minute
MODES = {
    "in-process": {"HELDOUT_SCORER": "in-process"},
    "docker-cold": {"HELDOUT_SCORER": "docker", "HELDOUT_SANDBOX_WARM": "false"},
    "docker-warm": {"HELDOUT_SCORER": "docker", "HELDOUT_SANDBOX_WARM": "true"},
}


@dataclass
class Figures:
    scored: int = 0
    elapsed_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    burst_waits: list[float] = field(default_factory=list)
    scorers: set[str] = field(default_factory=set)
    loads: list[float] = field(default_factory=list)
    latency_loads: list[float] = field(default_factory=list)  # just after the latency step

    @property
    def per_minute(self) -> float:
        return self.scored / self.elapsed_s * 60 if self.elapsed_s else 0.0


def submit(competition, user) -> int:
    from competitions.services.submissions import submission_create
    from tests import factories

    upload = factories.upload(factories.perfect_predictions())
    return submission_create(competition=competition, user=user, uploaded_file=upload).pk


def wait_done(ids: list[int], timeout: float) -> list[tuple[float, str, str]]:
    """(upload-to-finish seconds, status, scorer) of each submission once all are done."""
    from competitions.models import Attempt

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The attempt that ended each submission (scored or failed) has its time and scorer.
        rows = list(
            Attempt.objects.filter(
                submission_id__in=ids, outcome__in=["scored", "failed"]
            ).values_list(
                "submission__created_at",
                "finished_at",
                "outcome",
                "scorer_name",
                "submission__error_message",
            )
        )
        if len(rows) == len(ids):
            failed = [row[4] for row in rows if row[2] != "scored"]
            if failed:
                raise SystemExit(f"{len(failed)} submission(s) failed, e.g.: {failed[0]}")
            # An ended attempt always has finished_at.
            return [
                ((done - made).total_seconds(), status, name)  # type: ignore[operator]
                for made, done, status, name, _ in rows
            ]
        time.sleep(0.05)
    raise SystemExit(f"not all {len(ids)} submissions were scored within {timeout:.0f} s")


def measure(
    mode: str, competition, user, figures: Figures, args: argparse.Namespace, env: dict, logs: Path
) -> None:
    """One round of `mode` on freshly started workers, added to `figures`."""
    tag = f"{mode}-{len(figures.loads)}"
    workers = start_workers(args.workers, {**env, **MODES[mode]}, logs, env["BENCH_QUEUE"], tag)
    try:
        wait_done([submit(competition, user) for _ in range(args.workers + 1)], 300)
        if mode == "docker-warm":  # the latency target holds at load <= 2: wait for it
            quiet_for_latency()
        one_by_one = [wait_done([submit(competition, user)], 120)[0] for _ in range(5)]
        latency_load = os.getloadavg()[0]
        started = time.monotonic()
        ids = [submit(competition, user) for _ in range(args.submissions)]
        burst = wait_done(ids, 60 + 10 * args.submissions)
        elapsed = time.monotonic() - started
    finally:
        stop(workers)
    figures.scored += len(ids)
    figures.elapsed_s += elapsed
    figures.latencies += [t for t, _, _ in one_by_one]
    figures.burst_waits += [t for t, _, _ in burst]
    figures.scorers |= {name for _, _, name in one_by_one + burst}
    figures.loads.append(os.getloadavg()[0])
    figures.latency_loads.append(latency_load)
    say(
        f"  {mode:<12} round {len(figures.loads)}: {len(ids) / elapsed * 60:7.0f} per minute, "
        f"latency median {statistics.median(t for t, _, _ in one_by_one):.2f} s, "
        f"load {figures.loads[-1]:.2f}"
    )


def quiet_for_latency(timeout_s: float = 150) -> None:
    """Wait (at most `timeout_s`) for the 1-minute load average to fall to LOAD_FOR_LATENCY:
    the bursts before leave it high for a minute, and the latency target is for a quiet
    machine. Says how long it waited, or that it gave up (the verdict then says so)."""
    started = time.monotonic()
    while os.getloadavg()[0] > LOAD_FOR_LATENCY and time.monotonic() - started < timeout_s:
        time.sleep(2)
    load = os.getloadavg()[0]
    waited = time.monotonic() - started
    say(f"  (waited {waited:.0f} s for load <= {LOAD_FOR_LATENCY:g}: now {load:.2f})")


def report(results: dict[str, Figures], workers: int) -> None:
    say(f"\n{'mode':<12} {'per minute':>10} {'latency median':>15} {'burst p50/p90':>15}  scorer")
    for mode, f in results.items():
        waits = sorted(f.burst_waits)
        p90 = waits[int(0.9 * (len(waits) - 1))]
        say(
            f"{mode:<12} {f.per_minute:10.0f} {statistics.median(f.latencies):13.2f} s "
            f"{statistics.median(waits):6.2f}/{p90:5.2f} s  {', '.join(sorted(f.scorers))}"
        )
    base = results.get("in-process")
    if base is None or not base.per_minute:
        return
    say("")
    for mode in ("docker-cold", "docker-warm"):
        if mode in results:
            ratio = results[mode].per_minute / base.per_minute
            verdict = "met" if ratio >= THROUGHPUT_TARGET else "NOT met"
            say(
                f"{mode} throughput / in-process: {ratio:.0%} "
                f"(target >= {THROUGHPUT_TARGET:.0%}: {verdict}), {workers} workers"
            )
    warm = results.get("docker-warm")
    if warm is not None:
        latency = statistics.median(warm.latencies)
        load = max(warm.latency_loads)
        verdict = "met" if latency <= LATENCY_TARGET_S else "NOT met"
        if load > LOAD_FOR_LATENCY:
            verdict += f", but at load {load:.1f} > {LOAD_FOR_LATENCY:g}: no verdict"
        say(
            f"sandboxed (warm) upload to scored, median: {latency:.2f} s "
            f"(target <= {LATENCY_TARGET_S} s at load <= {LOAD_FOR_LATENCY:g}: {verdict})"
        )


def own_database(url: str, name: str, *, create: bool) -> None:
    """Create (or drop) the bench's own database `name` on the server of `url`."""
    import psycopg

    admin = urlparse(url)._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
        else:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description="Small submissions per minute, two workers.")
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument(
        "--image", default=os.environ.get("HELDOUT_SCORER_IMAGE", "heldout-scorer:latest")
    )
    args = parser.parse_args()
    modes = args.modes.split(",")
    token = secrets.token_hex(4)
    name = f"heldout_bench_throughput_{token}"
    database_url = urlparse(args.database_url)._replace(path=f"/{name}").geturl()
    own_database(args.database_url, name, create=True)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
            env = {
                "DJANGO_SETTINGS_MODULE": "config.settings.local",
                "DJANGO_DEBUG": "false",
                "DJANGO_LOG_LEVEL": "WARNING",
                "HELDOUT_DATA_DIR": tmp,
                "DATABASE_URL": database_url,
                "CELERY_BROKER_URL": args.broker_url,
                "HELDOUT_SCORER_IMAGE": args.image,
                "HELDOUT_DEPLOYMENT_ID": f"bench-{token}",
                "BENCH_QUEUE": f"bench-{token}",
            }
            setup_django(env)
            # One competition per mode: a task version records the scorer that first scored
            # it, and a worker with another one leaves its submissions alone.
            competitions = {
                mode: make_competition(f"{token}-{mode}", env["BENCH_QUEUE"], args)
                for mode in modes
            }
            say(
                f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; image "
                f"{args.image}; {args.rounds} round(s) of {', '.join(modes)}"
            )
            results = {mode: Figures() for mode in modes}
            for _round in range(args.rounds):
                for mode in modes:
                    competition, user = competitions[mode]
                    measure(mode, competition, user, results[mode], args, env, Path(tmp))
            report(results, args.workers)
            say(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    finally:
        from django.db import connections

        connections.close_all()
        own_database(args.database_url, name, create=False)
    return 0


def make_competition(token: str, queue: str, args: argparse.Namespace):
    from competitions.models import Task
    from competitions.services.teams import competition_join
    from tests import factories

    per_round = args.workers + 1 + 5 + args.submissions
    organizer = factories.make_user(f"bench-{token}-orga", staff=True)
    user = factories.make_user(f"bench-{token}-user")
    competition = factories.make_competition(
        slug=f"bench-{token}", organizers=[organizer], daily_limit=per_round * args.rounds
    )
    Task.objects.filter(competition=competition).update(queue=queue)
    competition_join(competition=competition, user=user, accept_rules=True)
    return competition, user


if __name__ == "__main__":
    sys.exit(main())
