"""A deployment of real processes for the multi-host and fault tests: gunicorn, Celery
workers (each on a "host" of its own, tests/host_process.py), `celery beat`, on a private
broker (tests/redis_server.py); and what those tests ask of it: uploads through the API,
waiting with the processes' logs at hand, and the checks that every accepted submission
was scored exactly once and counted once in its team's quota.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.authtoken.models import Token

from competitions.models import Competition, Score, ScoringRun, Submission
from tests import factories
from tests.host_process import host_env
from tests.redis_server import RedisServer, redis_server
from tests.web_process import web_process
from tests.worker_process import beat_process, worker_process

# Two splits, two metrics (tests/factories.py's competition).
SCORES_PER_SUBMISSION = 4


def tails(logs: Iterable[Path]) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text()[-2500:]}" for log in logs if log.exists())


def until(
    condition: Callable[[], object], what: str, timeout: float, logs: Iterable[Path]
) -> float:
    """Wait for `condition()`; return when it held (monotonic). Fails with the logs' tails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {timeout}s\n{tails(logs)}")


def token_of(user: User) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def predictions(n: int) -> bytes:
    """Valid predictions, different for every `n` (no two uploads are the same file)."""
    return factories.predictions_csv({"id9": 0.5 + (n % 1000) / 2000})


def upload(base: str, token: str, slug: str, content: bytes) -> requests.Response:
    return requests.post(
        f"{base}/api/v1/competitions/{slug}/submissions/",
        headers={"Authorization": f"Token {token}"},
        files={"file": ("predictions.csv", content)},
        timeout=60,
    )


def upload_all(base: str, uploads: list[tuple[str, str, bytes]], threads: int = 4) -> list[int]:
    """Send every (token, slug, content) upload, `threads` at a time; each must be accepted
    (202). Returns the submissions' ids."""
    with ThreadPoolExecutor(threads) as pool:
        responses = list(pool.map(lambda u: upload(base, *u), uploads))
    refused = [(r.status_code, r.text[:300]) for r in responses if r.status_code != 202]
    assert refused == [], refused
    return [r.json()["id"] for r in responses]


def unfinished(ids: Iterable[int]) -> list[tuple[int, str]]:
    return list(
        Submission.objects.filter(pk__in=list(ids))
        .exclude(status__in=["scored", "failed"])
        .values_list("pk", "status")
    )


def assert_scored_once(ids: list[int]) -> None:
    """Every submission scored, by one finished claim with one scoring record, its scores
    written once; none failed, none interrupted past recovery."""
    rows = Submission.objects.filter(pk__in=ids)
    assert rows.count() == len(ids)
    failed = list(rows.exclude(status="scored").values_list("pk", "status", "error_message"))
    assert failed == [], failed
    assert set(rows.values_list("failure", flat=True)) == {""}
    runs = dict.fromkeys(ids, 0)
    for submission_id in ScoringRun.objects.filter(submission__in=ids).values_list(
        "submission_id", flat=True
    ):
        runs[submission_id] += 1
    assert {pk: n for pk, n in runs.items() if n != 1} == {}, "scoring records per submission"
    scores = Score.objects.filter(submission__in=ids)
    assert scores.count() == SCORES_PER_SUBMISSION * len(ids)


def assert_counted_once(base: str, competition: Competition, accepted: dict[str, int]) -> None:
    """Each team's quota (the API's) counts exactly the uploads it had accepted:
    {token: accepted uploads}."""
    for token, count in accepted.items():
        quota = requests.get(
            f"{base}/api/v1/competitions/{competition.slug}/quota/",
            headers={"Authorization": f"Token {token}"},
            timeout=30,
        )
        assert quota.status_code == 200, quota.text
        assert quota.json()["total"]["used"] == count, quota.json()


@dataclass
class Deployment:
    """What `deployment()` started: `base` the site's URL, `workers` each host's current
    worker process, `logs` every process's log (the broker's included)."""

    folder: Path
    env: dict[str, str]
    broker: RedisServer
    stack: ExitStack
    base: str = ""
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)
    starts: dict[str, int] = field(default_factory=dict)

    def start_worker(self, host: str, *, wait: bool = True) -> subprocess.Popen:
        """A worker on `host` (again: a new process, the host's folder kept)."""
        self.starts[host] = self.starts.get(host, 0) + 1
        log = self.folder / f"{host}-{self.starts[host]}.log"
        self.logs.append(log)
        env = {**self.env, **host_env(self.folder / host)}
        proc = self.stack.enter_context(worker_process(log, env, host=host))
        self.workers[host] = proc
        if wait:
            self.wait_ready(host)
        return proc

    def wait_ready(self, host: str) -> None:
        log = self.folder / f"{host}-{self.starts[host]}.log"
        until(lambda: " ready." in log.read_text(), f"{host}'s worker start", 90, self.logs)

    def kill_worker(self, host: str) -> None:
        proc = self.workers[host]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def alive(self) -> None:
        """Fail, with the logs, if a worker or the broker exited on its own."""
        for host, proc in self.workers.items():
            if proc.poll() is not None:
                pytest.fail(f"{host}'s worker exited with {proc.returncode}\n{tails(self.logs)}")


@contextmanager
def deployment(
    folder: Path, env: dict[str, str], hosts: Iterable[str], *, beat: bool = True
) -> Iterator[Deployment]:
    """gunicorn, a worker on each of `hosts` and (with `beat`) `celery beat`, all on a
    broker of their own and the settings `env`; every process stopped on exit."""
    if connection.vendor != "postgresql":
        pytest.fail(
            "the multi-host and fault tests need PostgreSQL (DATABASE_URL): worker hosts "
            "cannot see the web's folder, where SQLite keeps the database",
            pytrace=False,
        )
    with ExitStack() as stack:
        broker = stack.enter_context(redis_server(folder / "broker"))
        env = {**env, "CELERY_BROKER_URL": broker.url()}
        fleet = Deployment(folder=folder, env=env, broker=broker, stack=stack)
        fleet.logs.append(broker.log)
        web_log = folder / "gunicorn.log"
        fleet.logs.append(web_log)
        # One gunicorn process (threaded): enough for these tests, and one Django less.
        fleet.base = stack.enter_context(web_process(web_log, "--workers", "1", extra_env=env))
        for host in hosts:
            fleet.start_worker(host, wait=False)
        if beat:
            beat_log = folder / "beat.log"
            fleet.logs.append(beat_log)
            stack.enter_context(beat_process(beat_log, env))
        for host in fleet.workers:
            fleet.wait_ready(host)
        yield fleet
