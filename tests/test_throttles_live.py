"""Throttle limits hold across processes: two gunicorn servers (two hosts, as far as the
throttle can tell) taking turns, sharing the database cache (the demo's) or Redis (
production's). Before the shared cache a 20/minute limit first answered 429 at try 41."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import redis
import requests
from django.core.cache import cache

from tests.web_process import web_process

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 5


def redis_url() -> str:
    """The Redis the tests may use: HELDOUT_TEST_CACHE_URL, else the test broker's if it is
    Redis (CI's), else a local one; it must answer (a test never skips)."""
    broker = os.environ.get("CELERY_BROKER_URL", "")
    url = os.environ.get("HELDOUT_TEST_CACHE_URL") or (
        broker if broker.startswith("redis://") else "redis://127.0.0.1:6379/15"
    )
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"This test needs Redis at {url} (or set HELDOUT_TEST_CACHE_URL): {exc}")
    return url


@pytest.fixture(params=["database", "redis"])
def servers(request, tmp_path, monkeypatch) -> Iterator[list[str]]:
    monkeypatch.setenv("HELDOUT_THROTTLE_AUTH", f"{LIMIT}/minute")
    if request.param == "redis":
        monkeypatch.setenv("HELDOUT_CACHE_URL", redis_url())
        # Counts of this run only (never flush: the database may hold a broker's queues).
        monkeypatch.setenv("HELDOUT_CACHE_KEY_PREFIX", f"test-{uuid.uuid4().hex}")
    else:
        cache.clear()  # the table outlives tests: no count from an earlier one
    with ExitStack() as stack:
        yield [
            stack.enter_context(web_process(tmp_path / f"web{n}.log", "--workers", "1"))
            for n in range(2)
        ]


def _token_attempt(base: str) -> requests.Response:
    # requests without a session: a new connection each time.
    return requests.post(
        base + "/api/v1/auth/token/", data={"username": "nobody", "password": "wrong"}, timeout=30
    )


def _login_attempt(base: str) -> requests.Response:
    form = requests.get(base + "/accounts/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token is not None
    return requests.post(
        base + "/accounts/login/",
        data={"csrfmiddlewaretoken": token[1], "username": "nobody", "password": "wrong"},
        cookies=form.cookies,
        headers={"Referer": base + "/accounts/login/"},
        timeout=30,
    )


def test_the_limit_holds_across_two_servers_taking_turns(servers):
    statuses = [_token_attempt(servers[n % 2]).status_code for n in range(LIMIT)]
    assert statuses == [400] * LIMIT

    refused = [_token_attempt(base) for base in servers]

    assert [r.status_code for r in refused] == [429, 429]
    assert all(1 <= int(r.headers["Retry-After"]) <= 60 for r in refused)


def test_the_login_page_on_one_server_counts_with_the_api_on_the_other(servers):
    for n in range(LIMIT):
        response = _login_attempt(servers[0]) if n % 2 else _token_attempt(servers[1])
        assert response.status_code in (200, 400)

    page = _login_attempt(servers[0])

    assert page.status_code == 429
    assert int(page.headers["Retry-After"]) >= 1
    assert "Too many attempts. Wait " in page.text
