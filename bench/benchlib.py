"""What the benchmarks that run the project as in production share: their report line, a
fresh database, Django set up against it. Imported by sibling scripts (bench/ is their
sys.path[0] when run as `.venv/bin/python bench/<name>.py`)."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse


def say(line: str) -> None:
    # A report on stdout is these scripts' purpose (ruff bans print in project code).
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def recreate_database(url: str) -> None:
    """Drop (even with sessions open) and create again the PostgreSQL database at `url`."""
    import psycopg

    parsed = urlparse(url)
    admin = parsed._replace(path="/postgres").geturl()
    name = parsed.path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(env: dict[str, str]) -> None:
    """Django set up with `env` in the environment, its database migrated."""
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
