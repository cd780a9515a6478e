"""The leaderboard in a real browser, at desktop and phone widths: the intervals, the
"≈ #1" mark and the reference rows, which are marked, unnumbered and have their interval."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from competitions.services.intervals import leaderboard_intervals_refresh
from judging.references import references_compute
from scoring.scorers import InProcessScorer
from tests import factories
from tests.browser.conftest import axe_findings, screenshot
from tests.competitions.test_intervals import board, submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}
INTERVAL = re.compile(r"[01]\.\d{5} \u2013 [01]\.\d{5}")  # an en dash


@pytest.fixture
def refs_board():
    competition, labels = board(slug="refs")
    # Two strong entries a hair apart, and a weak one; then what the workers would do:
    # the intervals, and the reference rows (the constant predictor only: no training file).
    for i, (name, skill) in enumerate((("strong", 0.3), ("twin", 0.28), ("weak", 0.1))):
        submit(competition, factories.team_for(competition, name), labels, skill, i)
    leaderboard_intervals_refresh(competition_id=competition.pk)
    assert references_compute(competition_id=competition.pk, scorer=InProcessScorer()) == 2
    return competition


@pytest.mark.parametrize("width", WIDTHS)
def test_the_board_shows_intervals_the_leader_tie_and_reference_rows(
    new_page, refs_board, axe_source, width
):
    page = new_page(*WIDTHS[width])

    page.goto(f"/c/{refs_board.slug}/leaderboard/")

    rows = page.locator("table.leaderboard tbody tr")
    expect(rows).to_have_count(4)
    strong, twin, weak, reference = (rows.nth(i) for i in range(4))
    for row in (strong, twin, weak, reference):
        expect(row.locator("td.interval")).to_have_text(INTERVAL)
    expect(strong.locator(".leader-tie")).to_be_visible()
    expect(twin.locator(".leader-tie")).to_be_visible()
    expect(weak.locator(".leader-tie")).to_have_count(0)
    # The constant predictor (ROC AUC 0.5) comes below every team, marked and unnumbered.
    expect(reference).to_have_class("reference")
    expect(reference.locator(".badge.reference")).to_have_text("Reference")
    expect(reference).to_contain_text("Constant predictor (class prior)")
    expect(reference.locator("td").first).to_have_text("Not ranked")
    expect(reference.locator("td.interval")).to_have_text("0.50000 \u2013 0.50000")
    expect(reference.locator("td.normalized")).to_have_text("0.000")
    expect(reference.locator("td.plausible-rank")).to_have_text("not ranked")
    expect(reference.locator(".leader-tie")).to_have_count(0)
    expect(strong.locator("td").first).to_have_text("1")
    expect(strong.locator("td.normalized")).to_have_text(re.compile(r"0\.\d{3}"))
    note = page.locator(".reference-note")
    expect(note).to_contain_text("they are not teams and are never ranked")
    expect(note).to_contain_text("the task has no public training file")
    expect(page.locator("#board-intro")).to_contain_text("3 teams")
    screenshot(page, f"leaderboard-references-{width}")
    assert axe_findings(page, axe_source) == []
