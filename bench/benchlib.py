"""What the benchmarks that run the project as in production share: their report line, a
database and a Redis server of their own (created for the run and removed after it: a bench
deletes nothing it did not create), Django set up against them, gunicorn and Celery worker
processes. Imported by sibling scripts (bench/ is their sys.path[0] when run as
`.venv/bin/python bench/<name>.py`)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
# The PostgreSQL server the benches make their databases on.
PG_SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def say(line: str) -> None:
    # A report on stdout is these scripts' purpose (ruff bans print in project code).
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@contextmanager
def scratch_database(name: str, server: str = PG_SERVER) -> Iterator[str]:
    """The URL of a new PostgreSQL database of this run's own (heldout_bench_<name>_<random>
    on `server`), dropped when the block ends."""
    import psycopg

    db = f"heldout_bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = urlparse(server)._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        yield urlparse(server)._replace(path=f"/{db}").geturl()
    finally:
        from django.db import connections

        connections.close_all()  # this process's own, if Django was set up against it
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def private_redis(logs: Path) -> Iterator[str]:
    """redis://127.0.0.1:<port> of a redis-server this run starts on a free loopback port
    (nothing saved to disk) and stops when the block ends: the shared Redis is never used,
    so nothing in it is flushed."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is missing: bash deploy/system-deps.sh bench installs it")
    port = free_port()
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    command += ["--appendonly", "no", "--dir", str(logs)]
    with (logs / "redis.log").open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not _answers(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"redis-server did not start: {(logs / 'redis.log').read_text()}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def setup_django(env: dict[str, str]) -> None:
    """Django set up with `env` in the environment, its database migrated."""
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def start_gunicorn(
    env: dict[str, str], log: Path, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, str]:
    """gunicorn as in production (config/gunicorn.py) on a free loopback port; its base URL
    once it answers."""
    import requests

    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.py"]
    command += ["--bind", f"127.0.0.1:{port}", "--access-logfile", "-", *extra]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(base + "/", timeout=2)
            return proc, base
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"gunicorn did not start:\n{log.read_text()[-3000:]}")


def start_workers(
    count: int, env: dict[str, str], logs: Path, queue: str = "cpu", tag: str = ""
) -> list[subprocess.Popen]:
    """`count` solo-pool Celery worker processes on `queue`, once each says it is ready;
    their logs are logs/worker[-tag]-N.log."""
    workers = []
    for n in range(count):
        command = [
            sys.executable, "-m", "celery", "-A", "config.celery_app", "worker", "-Q", queue,
            "--pool", "solo", "-n", f"bench{n}@%h", "--without-mingle", "--without-gossip",
            "--without-heartbeat", "-l", "INFO",
        ]  # fmt: skip
        # INFO: the worker logs through Django's logging (config/celery_app.py), and its
        # "ready." line is how this knows it started.
        worker_env = {**os.environ, **env, "DJANGO_LOG_LEVEL": "INFO"}
        with (logs / f"worker{tag and '-' + tag}-{n}.log").open("wb") as out:
            worker = subprocess.Popen(
                command, cwd=ROOT, env=worker_env, stdout=out, stderr=subprocess.STDOUT
            )
        workers.append(worker)
    deadline = time.monotonic() + 180  # a loaded machine takes its time
    for n, worker in enumerate(workers):
        log = logs / f"worker{tag and '-' + tag}-{n}.log"
        while "ready." not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker {n} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
    return workers


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
