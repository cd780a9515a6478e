"""gunicorn serving the site from the test database, configured as in production
(config/gunicorn.py: threaded workers), on a free loopback port: for tests that need a
real HTTP server, slow or broken connections included (tests/test_uploads_live.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from tests.worker_process import ROOT, database_url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def web_process(log: Path, *options: str, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Start gunicorn with config/gunicorn.py (and `options` over it; `extra_env` adds or
    overrides its environment); yields its base URL, stops it on exit."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "HELDOUT_DATA_DIR": str(settings.DATA_DIR),
        # Jobs it queues go to a broker folder under the test data dir, consumed by nobody:
        # these tests score in their own process.
        "CELERY_BROKER_URL": "filesystem://",
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.py"]
    command += ["--bind", f"127.0.0.1:{port}", "--access-logfile", "-", *options]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base, proc, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_until_serving(base: str, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer within {timeout}s:\n{log.read_text()[-3000:]}")
