"""A suite's matrix in a real browser, at desktop and phone widths: every method's row in
order with its intervals, an imputed cell marked as such, a scored cell linking its entry
page, the Friedman sentence, the critical-difference diagram drawn inline, the pivot by a
component tag, the pairwise Wilcoxon tests on request, and no accessibility finding."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import axe_findings, log_in, screenshot
from tests.suites.world import scored_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}


@pytest.mark.parametrize("width", WIDTHS)
def test_the_matrix_page_shows_the_full_matrix_an_imputed_cell_the_cd_diagram_and_the_tests(
    new_page, organizer, axe_source, width
):
    scored_world(organizer=organizer)
    page = new_page(*WIDTHS[width])

    page.goto("/s/bench/matrix/")

    rows = page.locator("table.suite-matrix tbody tr")
    expect(rows).to_have_count(3)
    oracle, forest, hasty = (rows.nth(i) for i in range(3))
    expect(oracle.locator("th")).to_have_text("oracle")
    expect(forest.locator("th")).to_have_text("forest")
    expect(hasty.locator("th")).to_contain_text("=hasty")
    expect(hasty.locator("th")).to_contain_text("(incomplete)")
    for row in (oracle, forest):
        expect(row.locator("td.cell-scored")).to_have_count(3)
    expect(oracle.locator("td.cell-scored").first).to_contain_text("1.0000")
    expect(oracle.locator('td[data-task="iris"] .interval')).to_have_text("[1.000, 1.000]")
    expect(forest.locator(".interval")).to_have_count(3)
    expect(hasty.locator('td[data-task="iris"] .badge.failed')).to_have_text("failed")
    expect(hasty.locator('td[data-task="digits"] .badge.missing')).to_have_text("missing")
    expect(hasty.locator('td[data-task="wine"]')).to_contain_text("0.7778")
    entry = re.compile(r"/c/bench-iris/entries/\d+/$")
    expect(oracle.locator('td[data-task="iris"] a')).to_have_attribute("href", entry)
    expect(hasty.locator('td[data-task="iris"] a')).to_have_count(0)
    expect(page.locator("p.friedman")).to_contain_text("Across 3 tasks, the Friedman test finds")
    diagram = page.locator("figure.cd svg.cd-diagram")
    expect(diagram).to_be_visible()
    expect(diagram).to_have_attribute("role", "img")
    for name in ("oracle", "forest", "=hasty"):
        expect(diagram).to_contain_text(name)
    screenshot(page, f"suite-matrix-{width}")
    assert axe_findings(page, axe_source) == []

    page.get_by_label("Group the methods by").select_option("model")
    page.get_by_role("button", name="Group").click()
    page.wait_for_url("**/matrix/?pivot=model")
    groups = page.locator("table.suite-pivot tbody tr")
    expect(groups.first.locator("th")).to_have_text("lookup")
    expect(page.locator("table.suite-pivot")).to_contain_text("forest, =hasty")
    assert axe_findings(page, axe_source) == []

    page.get_by_role("link", name="Pairwise Wilcoxon tests (Holm-corrected)").click()
    page.wait_for_url("**/matrix/?tests=wilcoxon&pivot=model#wilcoxon-heading")
    expect(page.locator("table.suite-wilcoxon tbody tr")).to_have_count(3)
    expect(page.locator("table.suite-wilcoxon caption")).to_contain_text("Holm-adjusted")
    expect(page.locator("table.suite-pivot")).to_be_visible()  # the pivot kept
    screenshot(page, f"suite-matrix-wilcoxon-{width}")
    assert axe_findings(page, axe_source) == []


@pytest.mark.parametrize("width", WIDTHS)
def test_the_other_suite_pages_have_no_serious_accessibility_finding(
    new_page, organizer, axe_source, width
):
    world = scored_world(organizer=organizer)
    page = new_page(*WIDTHS[width])
    log_in(page, "suite-alice", "pw-suite-alice")
    oracle = world.methods["oracle"].pk
    pages = {
        "list": "/s/",
        "overview": "/s/bench/",
        "method-owner": f"/s/bench/methods/{oracle}/",
        "method-new": "/s/bench/methods/new/",
    }
    found = {}
    for name, url in pages.items():
        page.goto(url)
        screenshot(page, f"suite-{name}-{width}")
        if findings := axe_findings(page, axe_source):
            found[name] = findings
    assert found == {}
    # The owner's upload form sends a file to one task; the run is listed, queued.
    page.goto(f"/s/bench/methods/{oracle}/")
    page.get_by_label("Task").select_option("wine")
    page.get_by_label("Predictions file").set_input_files(
        files=[{"name": "p.csv", "mimeType": "text/csv", "buffer": b"id,label\nid0,0.5\n"}]
    )
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".messages")).to_contain_text("Submitted to wine.")
    expect(page.locator("table.method-runs tbody tr")).to_have_count(4)
