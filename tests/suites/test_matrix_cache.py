"""The matrix's page body and JSON kept per matrix token (suites/matrix_cache.py): the
same bytes as a fresh render, a new one after any change to the matrix, nothing of who
asks kept."""

from __future__ import annotations

import pytest
from django.test import Client

from suites.matrix_cache import kept_render
from tests.suites.world import GOOD, WEAK, scored_world, submit_scored

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]

URLS = ("/s/bench/matrix/", "/s/bench/matrix/?pivot=model", "/api/v1/suites/bench/matrix/")


@pytest.fixture
def world(organizer):
    return scored_world(organizer=organizer)


def _body(response) -> bytes:
    content = response.content
    if response["Content-Type"].startswith("text/html"):  # the body only: the header is per request
        start = content.index(b'<h2 id="matrix-heading">')
        content = content[start : content.index(b"</main>")]
    return content


@pytest.mark.parametrize("url", URLS)
def test_a_kept_answer_has_the_bytes_of_a_fresh_render(world, url, settings):
    client = Client()
    first, kept = client.get(url), client.get(url)
    assert first.status_code == kept.status_code == 200
    settings.HELDOUT_BOARD_CACHE = False
    fresh = client.get(url)
    assert _body(kept) == _body(first) == _body(fresh)


@pytest.mark.parametrize("url", URLS)
def test_a_new_cell_is_shown_at_once(world, url):
    client = Client()
    before = client.get(url).content
    submit_scored(world.methods["=hasty"], "digits", GOOD)  # its missing cell, now scored
    after = client.get(url).content
    assert after != before
    assert after.count(b"missing") < before.count(b"missing")


def test_the_page_keeps_no_trace_of_who_asked(world, client):
    anonymous = Client().get("/s/bench/matrix/")
    signed_in = Client()
    signed_in.force_login(world.participant)
    page = signed_in.get("/s/bench/matrix/")
    assert world.participant.username.encode() in page.content  # in the site's header
    assert _body(page) == _body(anonymous)
    assert world.participant.username.encode() not in _body(page)


def test_a_kept_page_costs_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    client = Client()
    client.get("/s/bench/matrix/")
    with django_assert_max_num_queries(4):
        assert client.get("/s/bench/matrix/").status_code == 200


def test_with_the_board_cache_off_every_read_renders(world, settings):
    settings.HELDOUT_BOARD_CACHE = False
    calls = []

    def render() -> bytes:
        calls.append(1)
        return b"x"

    for _ in range(2):
        assert kept_render(suite=world.suite, token="t", parts=(), render=render) == b"x"
    assert len(calls) == 2
    settings.HELDOUT_BOARD_CACHE = True
    for _ in range(2):
        kept_render(suite=world.suite, token="t-on", parts=(), render=render)
    assert len(calls) == 3


def test_a_suite_keeps_one_matrix_and_one_body_per_url_however_often_it_changed(world):
    from django.core.cache import caches

    client = Client()
    pages = []
    for key, content in (("digits", GOOD), ("iris", GOOD), ("digits", WEAK)):
        submit_scored(world.methods["=hasty"], key, content)
        pages.append(client.get("/s/bench/matrix/").content)
        client.get("/api/v1/suites/bench/matrix/")
    assert len(set(pages)) == 3  # three matrices, each shown when it was current
    for cache in ("boards", "boards-local"):
        kept = [k for k in caches[cache]._cache if ":suite-" in k]  # type: ignore[attr-defined]
        matrices = [k for k in kept if ":suite-matrix:" in k and not k.endswith(":refresh")]
        bodies = [k for k in kept if ":suite-view:" in k]
        assert len(matrices) == (1 if cache == "boards" else 0), kept
        assert len(bodies) == 2, kept  # the page's and the JSON's, the latest of each
