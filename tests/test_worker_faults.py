"""Faults with real processes: a worker SIGKILLed mid-scoring, a worker whose database
connection is cut, a worker whose Docker engine goes away for a few seconds. Real Celery workers and `celery beat` on the test database and broker,
a real Docker engine running an organizer's scoring program that takes a few seconds.

Recovery settings are shrunk so each test takes seconds: heartbeat every 1 s, recovery
after 6 s, the reaper every 1 s.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress

import docker
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection

from competitions.models import SandboxRun, Score, ScoringRun, Submission, Task
from competitions.services.teams import competition_join
from judging.services import SUBMISSION_LABEL
from scoring.sandbox_labels import OWNER_LABEL
from tests import factories
from tests.worker_process import beat_process, database_url, until, worker_process

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

RECOVER_AFTER_S = 6
RECOVERY = {
    "HELDOUT_SCORER": "docker",
    "HELDOUT_HEARTBEAT_S": "1",
    "HELDOUT_RECOVER_AFTER_S": str(RECOVER_AFTER_S),
    "HELDOUT_REAP_EVERY_S": "1",
}
SCORES = (
    '{"public": {"roc_auc": 0.75, "accuracy": 0.5}, "private": {"roc_auc": 0.75, "accuracy": 0.5}}'
)


def _slow_program(seconds: float) -> str:
    """An organizer's scoring program that takes `seconds` and gives fixed scores."""
    return (
        f"import time\ntime.sleep({seconds})\nopen('/output/scores.json', 'w').write({SCORES!r})\n"
    )


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    client.ping()  # fails (never skips) without an engine
    yield client
    client.close()


def _competition(organizer, participant, program_seconds: float):
    competition = factories.make_competition(organizers=[organizer])
    competition_join(competition=competition, user=participant, accept_rules=True)
    task = Task.objects.get(competition=competition)
    task.scorer_program.save("slow.py", ContentFile(_slow_program(program_seconds).encode()))
    return competition


def _containers(engine, submission: Submission, worker, *, every: bool = False, **filters) -> list:
    """The sandbox containers `worker` started for `submission`: other test runs may share
    the engine, and their submission ids may be ours."""
    labels = [
        f"{SUBMISSION_LABEL}={submission.pk}",
        f"{OWNER_LABEL}={socket.gethostname()}:{worker.pid}",
    ]
    return engine.containers.list(all=every, filters={"label": labels, **filters})


def _status(submission: Submission) -> str:
    return Submission.objects.values_list("status", flat=True).get(pk=submission.pk)


def _scored_once(submission: Submission) -> None:
    submission.refresh_from_db()
    assert (submission.status, submission.failure) == ("scored", ""), submission.error_message
    assert Score.objects.filter(submission=submission).count() == 4
    assert ScoringRun.objects.filter(submission=submission).count() == 1
    counted = Submission.objects.filter(team=submission.team).exclude(
        failure__in=Submission.UNCOUNTED_FAILURES
    )
    assert counted.count() == 1


@pytest.mark.docker
def test_a_sigkilled_workers_submission_is_scored_by_another_within_the_recovery_target(
    tmp_path, engine, organizer, participant
):
    competition = _competition(organizer, participant, program_seconds=4)
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log", tmp_path / "beat.log"]
    with ExitStack() as stack:
        stack.enter_context(beat_process(logs[2], RECOVERY))
        # Two workers, both ready before the submission: the survivor's start-up time
        # must not count in the recovery time measured.
        workers = [stack.enter_context(worker_process(log, RECOVERY)) for log in logs[:2]]
        for log in logs[:2]:
            until(lambda log=log: " ready." in log.read_text(), "a worker's start", 60, logs)
        submission = factories.submitted(competition, participant)

        def scoring_worker():
            running = [w for w in workers if _containers(engine, submission, w, status="running")]
            return running[0] if running else None

        until(lambda: scoring_worker() is not None, "the scoring container's start", 30, logs)
        doomed = scoring_worker()
        assert doomed is not None
        assert _status(submission) == "running"
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        killed = time.monotonic()

        requeued = until(
            lambda: submission.scoring_attempts.filter(outcome="interrupted").exists(),
            "the requeue",
            RECOVER_AFTER_S + 8,
            logs,
        )
        done = until(lambda: _status(submission) in ("scored", "failed"), "scoring", 30, logs)
        for container in _containers(engine, submission, doomed, every=True):
            container.remove(force=True)  # the dead worker's, left to run out
    # Back in the queue within the recovery time plus a reaper period or two, never earlier
    # than the recovery time (its heartbeat was at most a second old at the kill).
    assert RECOVER_AFTER_S - 1 <= requeued - killed <= RECOVER_AFTER_S + 4
    assert done - killed < 25
    _scored_once(submission)
    assert factories.outcomes(submission) == ["interrupted", "scored"]
    assert list(SandboxRun.objects.filter(submission=submission).values_list("attempt")) == [(2,)]


class CuttableProxy:
    """A TCP proxy on loopback whose connections can be cut for a while: in front of
    PostgreSQL (`target` a host and port) or the Docker engine (`target` a unix socket)."""

    def __init__(self, target: tuple[str, int] | str) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            if not self.up.is_set():
                client.close()
                continue
            upstream = self._connect()
            with self.lock:
                self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _connect(self) -> socket.socket:
        if isinstance(self.target, tuple):
            return socket.create_connection(self.target)
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(self.target)
        return upstream

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        with suppress(OSError, ValueError):
            while True:
                ready, _, _ = select.select([a, b], [], [], 1)
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        raise OSError("closed")
                    (b if source is a else a).sendall(data)
        for s in (a, b):
            with suppress(OSError):
                s.close()

    def cut(self, seconds: float) -> None:
        """Drop every connection and refuse new ones for `seconds`."""
        self.up.clear()
        with self.lock:
            for s in self.sockets:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self.sockets.clear()
        time.sleep(seconds)
        self.up.set()

    def close(self) -> None:
        self.server.close()


class HeldProxy(CuttableProxy):
    """A CuttableProxy that stays cut until `restore()` (tests/test_ops_live.py,
    tests/test_outbox_live.py)."""

    def hold(self) -> None:
        """Drop every connection and refuse new ones until `restore()`."""
        self.up.clear()
        with self.lock:
            for s in self.sockets:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self.sockets.clear()

    def restore(self) -> None:
        self.up.set()


@pytest.mark.docker
def test_a_worker_that_loses_the_database_for_a_second_gives_back_and_scores(
    tmp_path, engine, organizer, participant
):
    competition = _competition(organizer, participant, program_seconds=3)
    db = connection.settings_dict
    proxy = CuttableProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    proxied = database_url().replace(f":{db.get('PORT') or 5432}/", f":{proxy.port}/")
    assert str(proxy.port) in proxied
    log = tmp_path / "worker.log"
    try:
        with worker_process(log, {**RECOVERY, "DATABASE_URL": proxied}) as worker:
            submission = factories.submitted(competition, participant)
            until(
                lambda: bool(_containers(engine, submission, worker, status="running")),
                "the scoring container's start",
                60,
                [log],
            )
            proxy.cut(1.0)
            until(lambda: _status(submission) in ("scored", "failed"), "scoring", 30, [log])
    finally:
        proxy.close()
    _scored_once(submission)
    # Given back once for the lost connection, claimed again: no interruption counted.
    assert factories.outcomes(submission) == ["returned", "scored"]
    assert "goes back to the queue" in log.read_text()


def test_the_worker_refuses_to_start_with_contradictory_settings(tmp_path):
    log = tmp_path / "worker.log"
    with worker_process(log, {"HELDOUT_RECOVER_AFTER_S": "10", "HELDOUT_HEARTBEAT_S": "15"}) as p:
        assert p.wait(timeout=60) != 0
    assert "heldout.E001" in log.read_text()
    assert settings.HELDOUT_RECOVER_AFTER_S > 2 * settings.HELDOUT_HEARTBEAT_S  # ours unchanged
    assert os.environ.get("HELDOUT_RECOVER_AFTER_S") is None


def _quota(participant, competition) -> dict:
    from tests.conftest import client_for

    response = client_for(participant).get(f"/api/v1/competitions/{competition.slug}/quota/")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.docker
def test_a_docker_engine_outage_during_scoring_costs_no_submission_its_allowance_or_quota(
    tmp_path, engine, organizer, participant
):
    # The machine's dockerd is shared: the worker reaches it through a proxy that is cut
    # for a few seconds instead, as a restart of the engine looks to its clients.
    competition = _competition(organizer, participant, program_seconds=3)
    proxy = CuttableProxy("/var/run/docker.sock")
    log = tmp_path / "worker.log"
    env = {**RECOVERY, "DOCKER_HOST": f"tcp://127.0.0.1:{proxy.port}"}
    try:
        with worker_process(log, env) as worker:
            submissions = [factories.submitted(competition, participant) for _ in range(2)]
            before = _quota(participant, competition)
            assert before["total"]["used"] == 2
            until(
                lambda: bool(_containers(engine, submissions[0], worker, status="running")),
                "the scoring container's start",
                60,
                [log],
            )
            proxy.cut(4.0)
            for submission in submissions:
                until(lambda s=submission: _status(s) in ("scored", "failed"), "scoring", 90, [log])
            for submission in submissions:  # the first attempt's container, cut off
                for container in _containers(engine, submission, worker, every=True):
                    container.remove(force=True)
    finally:
        proxy.close()
    assert "goes back to the queue" in log.read_text()
    for submission in submissions:
        submission.refresh_from_db()
        assert (submission.status, submission.failure) == ("scored", ""), submission.error_message
        assert factories.interruptions(submission) == 0
        assert Score.objects.filter(submission=submission).count() == 4
    # Given back at least once, no allowance used.
    assert factories.outcomes(submissions[0])[-2:] == ["returned", "scored"]
    assert _quota(participant, competition) == before
