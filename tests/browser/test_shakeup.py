"""The shake-up in a real browser: finalize, a real worker process computes the report, and
the private board shows each team's move since the public board."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from competitions.services.lifecycle import competition_finalize
from tests import factories
from tests.browser.conftest import screenshot
from tests.competitions.test_shakeup import _shaken

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WORKER_TIMEOUT_MS = 60_000


def test_the_final_board_shows_since_public_and_marks_moves_beyond_sampling(new_page, worker):
    organizer = factories.make_user("orga")
    competition = _shaken(organizer)
    competition_finalize(competition=competition, by=organizer)  # the worker gets the report
    page = new_page()
    page.goto(f"/c/{competition.slug}/leaderboard/?split=private")
    for _ in range(WORKER_TIMEOUT_MS // 500):
        # The column shows from finalize on; its cells fill once the worker wrote the report.
        if page.locator("td.since-public span").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    screenshot(page, "leaderboard-shakeup")

    expect(page.get_by_role("columnheader", name="Since public")).to_be_visible()
    honest = page.locator("tbody tr", has_text="honest")
    expect(honest.locator("td.since-public")).to_contain_text("↑1")
    expect(honest.locator(".beyond-sampling")).to_be_visible()
    overfit = page.locator("tbody tr", has_text="overfit")
    expect(overfit.locator("td.since-public")).to_contain_text("↓")
    expect(page.locator(".shakeup-note")).to_contain_text("beyond what the choice of test rows")
