"""The leaderboard's uncertainty in a real browser, computed by a real worker process."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import screenshot
from tests.competitions.test_intervals import board, submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WORKER_TIMEOUT_MS = 60_000


def test_the_board_shows_intervals_and_who_is_tied_with_the_leader(new_page, worker):
    competition, labels = board(slug="honest")
    # Two strong entries a hair apart, and a weak one; scored here, so that the worker's
    # only job is the one under test: the intervals the scoring enqueued.
    for i, (name, skill) in enumerate((("strong", 0.3), ("twin", 0.28), ("weak", 0.02))):
        submit(competition, factories.team_for(competition, name), labels, skill, i)
    page = new_page()
    url = f"/c/{competition.slug}/leaderboard/"

    page.goto(url)
    rows = page.locator("table.leaderboard tbody tr")
    expect(rows).to_have_count(3)
    # Until the worker ran: "pending", never computed by the page.
    for _ in range(WORKER_TIMEOUT_MS // 500):
        if "pending" not in rows.first.inner_text() and "≈ #1" in rows.first.inner_text():
            break
        page.wait_for_timeout(500)
        page.reload()
    screenshot(page, "leaderboard-intervals")

    strong, twin, weak = (rows.nth(i) for i in range(3))
    interval = re.compile(r"[01]\.\d{5} \u2013 [01]\.\d{5}")  # an en dash
    for row in (strong, twin, weak):
        expect(row.locator("td.interval")).to_have_text(interval)
    expect(strong.locator(".leader-tie")).to_be_visible()
    expect(twin.locator(".leader-tie")).to_be_visible()
    expect(weak.locator(".leader-tie")).to_have_count(0)
    expect(weak.locator("td.plausible-rank")).to_contain_text("3")
    expect(page.locator(".uncertainty-note")).to_contain_text(
        "cannot be told apart from the leader"
    )
    expect(page.locator(".uncertainty-note")).to_contain_text("1000 resamples")

    # The weak entry against the leader: a clear difference, on its own page.
    weak.get_by_role("link", name="compare").click()
    expect(page.get_by_role("heading", name="Compare two entries")).to_be_visible()
    expect(page.locator(".test")).to_contain_text("DeLong")
    expect(page.get_by_text("larger than the test set's sampling noise explains")).to_be_visible()
    screenshot(page, "leaderboard-compare")
