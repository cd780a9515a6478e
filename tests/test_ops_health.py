"""/readyz answered in this process, on this test database: its database check is a
statement of its own (competitions/ops/health.py), so it runs on SQLite too (`sqlite_too`:
`make demo`'s database). The live checks, through a real gunicorn: tests/test_ops_live.py."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]


def test_readyz_finds_the_database_ready(client):
    response = client.get("/readyz")

    assert response.json()["checks"]["database"]["status"] == "ok", response.json()
    assert response.status_code == 200, response.json()
