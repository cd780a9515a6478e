"""The statistics plots as a reader sees them (issue 14): a newcomer's points spread out,
the best-so-far line drawn, every date label inside the picture, a single score on a
sensible axis, labels readable on a phone and plots as wide as the page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from competitions.services.teams import competition_join
from tests import factories
from tests.browser.conftest import log_in, screenshot
from tests.pages.builders import scored, team_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GEOMETRY = """svg => {
  const box = svg.getBoundingClientRect();
  const view = svg.viewBox.baseVal;
  const dots = Array.from(svg.querySelectorAll("circle.dot.mine")).map(c => c.cx.baseVal.value);
  const line = svg.querySelector("path.line.mine");
  const ticks = Array.from(svg.querySelectorAll("text.tick")).map(t => {
    const b = t.getBBox(); const r = t.getBoundingClientRect();
    return {text: t.textContent, left: b.x, right: b.x + b.width, px: r.height};
  });
  return {width: box.width, viewWidth: view.width, dots,
          lineLength: line ? line.getTotalLength() : 0, ticks};
}"""


@pytest.fixture
def newcomer(organizer, participant):
    """The leader has scored for ten days; alice, new, has three submissions this hour."""
    competition = factories.make_competition(organizers=[organizer])
    leader = team_for(competition, "lead")
    for days, value in ((10, 0.80), (6, 0.86), (2, 0.91)):
        scored(leader, value, minutes_ago=days * 24 * 60)
    alice = competition_join(competition=competition, user=participant, accept_rules=True).team
    for minutes, value in ((50, 0.70), (30, 0.78), (10, 0.75)):
        scored(alice, value, minutes_ago=minutes)
    return competition


def test_a_newcomers_points_spread_over_the_plot_with_a_visible_best_so_far_line(
    new_page, newcomer
):
    page = new_page(width=1280, height=800)
    log_in(page, "alice", "pw-alice")
    page.goto("/c/tiny/statistics/")
    plot = page.locator("svg[aria-labelledby^='progress-']")
    expect(plot).to_be_visible()
    g = plot.evaluate(GEOMETRY)
    assert len(g["dots"]) == 3
    spread = (max(g["dots"]) - min(g["dots"])) / g["viewWidth"]
    assert spread > 0.4, f"the newcomer's points take {spread:.0%} of the width"
    assert g["lineLength"] > 0.3 * g["viewWidth"], g["lineLength"]
    for tick in g["ticks"]:
        assert tick["left"] >= 0, tick
        assert tick["right"] <= g["viewWidth"], tick
    main = page.locator("main").evaluate("m => m.getBoundingClientRect().width")
    assert g["width"] >= 0.85 * (main - 32), (g["width"], main)
    screenshot(page, "53-statistics-newcomer-1280")


def test_on_a_phone_the_plot_labels_are_readable(new_page, newcomer):
    page = new_page(width=390, height=844)
    log_in(page, "alice", "pw-alice")
    page.goto("/c/tiny/statistics/")
    for plot_id in ("distribution", "progress"):
        g = page.locator(f"svg[aria-labelledby^='{plot_id}-']").evaluate(GEOMETRY)
        smallest = min(t["px"] for t in g["ticks"])
        assert smallest >= 10, f"{plot_id}: tick labels {smallest:.1f} px high"
        for tick in g["ticks"]:
            assert tick["left"] >= 0, (plot_id, tick)
            assert tick["right"] <= g["viewWidth"], (plot_id, tick)
    screenshot(page, "54-statistics-newcomer-390")


def test_a_single_perfect_score_keeps_the_roc_auc_axis_within_zero_and_one(
    new_page, organizer, participant
):
    competition = factories.make_competition(organizers=[organizer])
    alice = competition_join(competition=competition, user=participant, accept_rules=True).team
    scored(alice, 1.0, minutes_ago=5)
    page = new_page()
    log_in(page, "alice", "pw-alice")
    page.goto(f"/c/{competition.slug}/statistics/")
    for plot_id in ("distribution", "progress"):
        labels = page.locator(f"svg[aria-labelledby^='{plot_id}-'] text.tick").all_text_contents()
        numbers = [float(t) for t in labels if t.replace(".", "", 1).replace("-", "", 1).isdigit()]
        assert numbers, (plot_id, labels)
        if plot_id == "progress":
            assert max(numbers) <= 1.0, (plot_id, labels)
        else:  # scores on the x axis; whole numbers of teams on the y axis
            assert not [n for n in numbers if n > 1 and n != int(n)], (plot_id, labels)
