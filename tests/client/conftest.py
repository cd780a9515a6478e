"""The `heldout` console script against a live site: gunicorn (tests/web_process.py) queueing
into the test broker, a real Celery worker scoring (tests/worker_process.py), the test
database (PostgreSQL in CI). The CLI runs as a subprocess with its own HOME and
XDG_CONFIG_HOME, so its config file is the test's."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from tests.web_process import web_process
from tests.worker_process import worker_process

HELDOUT = Path(sys.executable).with_name("heldout")


@dataclass
class Live:
    url: str
    worker_log: Path


@pytest.fixture
def live(tmp_path) -> Iterator[Live]:
    """The site and a worker, both on the test database and broker."""
    worker_log = tmp_path / "worker.log"
    broker = {"CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    with (
        worker_process(worker_log),
        web_process(tmp_path / "gunicorn.log", extra_env=broker) as url,
    ):
        yield Live(url=url, worker_log=worker_log)


@pytest.fixture
def site(tmp_path) -> Iterator[str]:
    """The site alone (no worker): for what needs no scoring."""
    with web_process(tmp_path / "gunicorn.log") as url:
        yield url


def token_of(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


@dataclass
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


@pytest.fixture
def home(tmp_path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def heldout(home) -> Cli:
    """`heldout(*args, env={...}, cwd=..., input=...)` runs the console script."""
    assert HELDOUT.exists(), f"{HELDOUT} is missing: pip install --no-deps -e client/"

    def run(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, input: str = ""
    ) -> Result:
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "COLUMNS": "250",
            "NO_COLOR": "1",
            **(env or {}),
        }
        done = subprocess.run(
            [str(HELDOUT), *args],
            env=environment,
            cwd=cwd or home,
            input=input,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run


def explain(result: Result) -> str:
    return f"exit {result.code}\n--- stdout\n{result.out}\n--- stderr\n{result.err}"
