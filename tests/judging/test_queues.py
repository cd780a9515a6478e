"""Worker queues by resource class: a task's submissions go to the task's queue, and only a
worker started with `-Q <that queue>` scores them.

The broker is the one the test settings configure (the file-system broker, or Redis when
CELERY_BROKER_URL says so, as in CI): messages are read back from it, nothing is eager.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from competitions.models import Submission, Task
from competitions.services.submissions import submission_rescore
from competitions.services.teams import competition_join
from config.celery_app import app as celery_app
from judging.reaper import submissions_reap
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


def _queue_name(kind: str) -> str:
    # Unique per test: the broker outlives the test database.
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def _drain(queue: str) -> list[int]:
    """The submission ids of the scoring jobs waiting in `queue`, taken off the broker."""
    ids = []
    with celery_app.connection_for_read() as conn:
        waiting = conn.SimpleQueue(queue)
        try:
            while True:
                try:
                    message = waiting.get(block=True, timeout=1.5)
                except waiting.Empty:
                    break
                message.ack()
                # Periodic tasks an earlier test's beat left on the broker are not ours.
                if message.headers["task"] != "scoring.tasks.submission_score_task":
                    continue
                args, _kwargs, _embed = message.decode()
                ids.extend(args)
        finally:
            waiting.close()
    return ids


def _with_queue(competition, queue: str):
    Task.objects.filter(competition=competition).update(queue=queue)
    competition.task.refresh_from_db()
    return competition


@pytest.mark.django_db
def test_a_submission_is_sent_to_its_tasks_queue_and_no_other(
    competition, participant, django_capture_on_commit_callbacks
):
    assert not celery_app.conf.task_always_eager
    gpu = _queue_name("gpu")
    _with_queue(competition, gpu)
    # The default queue is shared with earlier tests, whose submission ids SQLite hands out
    # again after each rollback: what they left there is not this test's.
    _drain(settings.CELERY_TASK_DEFAULT_QUEUE)

    with django_capture_on_commit_callbacks(execute=True):
        submission = factories.submitted(competition, participant)

    assert _drain(gpu) == [submission.pk]
    assert submission.pk not in _drain(settings.CELERY_TASK_DEFAULT_QUEUE)


@pytest.mark.django_db
def test_a_rescore_and_the_reaper_send_to_the_tasks_queue_too(
    competition, participant, django_capture_on_commit_callbacks, settings
):
    large = _queue_name("large-memory")
    _with_queue(competition, large)
    with django_capture_on_commit_callbacks(execute=False):
        submission = factories.submitted(competition, participant)
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    submission.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        submission_rescore(submission=submission)
    assert _drain(large) == [submission.pk]

    settings.HELDOUT_RESEND_AFTER_S = 60
    Submission.objects.filter(pk=submission.pk).update(
        queued_at=submission.queued_at - timedelta(minutes=5)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert submissions_reap()["resent"] == 1
    assert _drain(large) == [submission.pk]


# --- a real worker serving one class ------------------------------------------------------


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{db.get('USER') or 'postgres'}{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def start_worker(tmp_path):
    started: list[subprocess.Popen] = []

    def start(queues: str) -> tuple[subprocess.Popen, Path]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": _database_url(),
            "HELDOUT_DATA_DIR": str(settings.DATA_DIR),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "HELDOUT_SCORER": "in-process",
        }
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker",
                 "-Q", queues, "--pool", "solo", "--without-heartbeat", "--without-mingle",
                 "--without-gossip", "-l", "INFO"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        started.append(proc)
        return proc, log

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_until_scored(pk: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Submission.objects.values_list("status", flat=True).get(pk=pk) == "scored":
            return
        if proc.poll() is not None:
            pytest.fail(f"the worker exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"not scored after {timeout}s; worker log:\n{log.read_text()[-3000:]}")


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_serves_only_the_queue_it_was_started_with(start_worker, organizer, participant):
    gpu = _queue_name("gpu")
    on_gpu = _with_queue(factories.make_competition(slug="on-gpu", organizers=[organizer]), gpu)
    on_cpu = _with_queue(
        factories.make_competition(slug="on-cpu", organizers=[organizer]), _queue_name("cpu")
    )
    for competition in (on_gpu, on_cpu):
        competition_join(competition=competition, user=participant, accept_rules=True)
    cpu_submission = factories.submitted(on_cpu, participant)  # committed: sent at once
    gpu_submission = factories.submitted(on_gpu, participant)

    proc, log = start_worker(gpu)
    _wait_until_scored(gpu_submission.pk, proc, log)

    time.sleep(2)  # the worker has had time to take the other job, were it on its queue
    cpu_submission.refresh_from_db()
    assert cpu_submission.status == Submission.Status.QUEUED
    assert _drain(on_cpu.task.queue) == [cpu_submission.pk]
