"""A real Celery worker process on the test database and the test broker, for tests that
go through the queue end to end (tests/test_celery_worker.py, tests/browser/)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.host_process import host_command

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database the tests run on (the test database, not the configured one)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def process_env(extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker or beat process on the test database and broker;
    `extra_env` adds or overrides settings (e.g. HELDOUT_RECOVER_AFTER_S)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "HELDOUT_DATA_DIR": str(settings.DATA_DIR),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        **(extra_env or {}),
    }


@contextmanager
def worker_process(
    log: Path, extra_env: dict[str, str] | None = None, *, host: str = ""
) -> Iterator[subprocess.Popen]:
    """Start `celery worker -Q cpu` (solo pool) writing to `log`; stop it on exit. With
    `host`, on a host of that name that cannot see this process's data folder
    (tests/host_process.py; `extra_env` then gives it folders of its own)."""
    command = [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker", "-Q", "cpu"]
    command += ["--pool", "solo", "--without-heartbeat", "--without-mingle", "--without-gossip"]
    command += ["-l", "INFO"]
    if host:
        command = host_command(host, Path(settings.DATA_DIR), command)
    with _process(command, log, extra_env) as proc:
        yield proc


@contextmanager
def beat_process(log: Path, extra_env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Start `celery beat` (the reaper's scheduler), its schedule file beside `log`."""
    schedule = log.with_name(f"{log.stem}-schedule")
    command = [sys.executable, "-m", "celery", "-A", "config.celery_app", "beat"]
    command += ["-s", str(schedule), "-l", "INFO"]
    with _process(command, log, extra_env) as proc:
        yield proc


@contextmanager
def _process(
    command: list[str], log: Path, extra_env: dict[str, str] | None
) -> Iterator[subprocess.Popen]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=process_env(extra_env), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for_status(
    submission_id: int, wanted: set[str], proc: subprocess.Popen, log: Path, timeout: float = 60
) -> str:
    """Poll the submission's status until it is in `wanted`; fail with the worker's log."""
    from competitions.models import Submission

    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = Submission.objects.values_list("status", flat=True).get(pk=submission_id)
        if status in wanted:
            return status
        if proc.poll() is not None:
            pytest.fail(f"the worker exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(
        f"submission still {status} after {timeout}s; worker log:\n{log.read_text()[-3000:]}"
    )


def until(condition, what: str, timeout: float, logs: list[Path]) -> float:
    """Wait for `condition()`; return when it held (monotonic). Fails with the logs' tails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.1)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-2500:]}" for log in logs if log.exists())
    pytest.fail(f"{what} did not happen within {timeout}s\n{tails}")
