"""Every main page in a real browser, wide and narrow: labelled controls, sensible
headings, no sideways scrolling on a phone, and the keyboard's way in."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from competitions.models import OrganizerJob
from competitions.services.teams import competition_join, team_invite
from tests import factories
from tests.browser.conftest import log_in, screenshot
from tests.pages.builders import failed_invalid, scored, team_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNLABELLED = """() => Array.from(document.querySelectorAll(
    "input:not([type=hidden]), select, textarea, button")).filter(el => {
  if (el.tagName === "BUTTON") return !el.textContent.trim() && !el.getAttribute("aria-label");
  return !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
    && !el.getAttribute("aria-labelledby");
}).map(el => el.outerHTML.slice(0, 120))"""

HEADING_JUMPS = """() => {
  const levels = Array.from(document.querySelectorAll("main h1, main h2, main h3, main h4"))
    .map(h => Number(h.tagName[1]));
  const jumps = [];
  levels.forEach((level, i) => { if (i && level > levels[i - 1] + 1) jumps.push(levels.slice(0, i + 1)); });
  return {h1: levels.filter(l => l === 1).length, first: levels[0], jumps};
}"""

OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


@pytest.fixture
def busy_competition(organizer, participant, other_participant):
    """A board with a tie at rank 2, a scored history for alice, a rejected file and two
    finished background jobs."""
    competition = factories.make_competition(organizers=[organizer])
    alice = competition_join(competition=competition, user=participant, accept_rules=True).team
    bob = competition_join(competition=competition, user=other_participant, accept_rules=True).team
    scored(alice, 0.71, minutes_ago=300)
    scored(alice, 0.83, minutes_ago=200)
    scored(alice, 0.92, 0.88, minutes_ago=100)
    scored(bob, 0.95, minutes_ago=150)
    for name, value in (("carol", 0.92), ("dave", 0.64), ("erin", 0.5)):
        scored(team_for(competition, name), value, minutes_ago=250)
    failed_invalid(
        alice,
        [
            {
                "code": "duplicate_id",
                "message": 'Line 3: id "id0" appears again.',
                "line": 3,
                "column": "id",
            },
            {
                "code": "not_numeric",
                "message": 'Line 4, column "label": "x" is not a number.',
                "line": 4,
                "column": "label",
            },
        ],
    )
    team_invite(team=alice, by=participant, username="dave")
    # Finished background jobs: the Organize pages list them (and don't reload by themselves).
    done = {"competition": competition, "created_by": organizer, "status": "done"}
    OrganizerJob.objects.create(
        **done, kind="rescore_all", progress_done=6, progress_total=6, result={"queued": 6}
    )
    OrganizerJob.objects.create(
        **done | {"status": "failed"},
        kind="dry_run",
        progress_total=1,
        message="The program failed on the sample submission sample_submission.csv: "
        "exited with code 1: KeyError: 'label'",
        result={"code": "scorer_rejected", "dry_run": {"ok": False, "log": "KeyError: 'label'"}},
    )
    return competition


def _check(page, name: str) -> None:
    assert page.evaluate(UNLABELLED) == [], f"{name}: controls without a label"
    headings = page.evaluate(HEADING_JUMPS)
    assert (headings["h1"], headings["first"]) == (1, 1), (name, headings)
    assert headings["jumps"] == [], (name, headings)
    assert page.evaluate(OVERFLOW) <= 0, f"{name}: the page scrolls sideways"
    screenshot(page, name)


PARTICIPANT_PAGES = [
    ("list", "/"),
    ("overview", "/c/tiny/"),
    ("data", "/c/tiny/data/"),
    ("rules", "/c/tiny/rules/"),
    ("leaderboard", "/c/tiny/leaderboard/"),
    ("leaderboard-sorted-search", "/c/tiny/leaderboard/?sort=-last&q=a"),
    ("statistics", "/c/tiny/statistics/"),
    ("submit", "/c/tiny/submit/"),
    ("my-submissions", "/c/tiny/submissions/"),
    ("team", "/c/tiny/team/"),
    ("account", "/account/"),
]
ORGANIZER_PAGES = [
    ("organize", "/c/tiny/organize/"),
    ("organize-overview", "/c/tiny/organize/overview/"),
    ("organize-data", "/c/tiny/organize/data/"),
    ("organize-phases", "/c/tiny/organize/phases/"),
    ("organize-submissions", "/c/tiny/organize/submissions/"),
    ("organize-teams", "/c/tiny/organize/teams/"),
    ("organize-people", "/c/tiny/organize/people/"),
    ("organize-shakeup", "/c/tiny/organize/shake-up/"),
    ("organize-log", "/c/tiny/organize/log/"),
    ("organize-import", "/organize/import/"),
    ("organize-apply", "/organize/apply/"),
]


@pytest.mark.parametrize("width", [1280, 375])
def test_the_participant_pages_are_labelled_and_fit_the_screen(new_page, busy_competition, width):
    page = new_page(width=width)
    log_in(page, "alice", "pw-alice")
    for name, url in PARTICIPANT_PAGES:
        page.goto(url)
        _check(page, f"30-{name}-{width}")
    page.goto("/c/tiny/leaderboard/")
    expect(page.locator("tr.mine")).to_contain_text("=2")


@pytest.mark.parametrize("width", [1280, 375])
def test_the_organizer_pages_are_labelled_and_fit_the_screen(new_page, busy_competition, width):
    page = new_page(width=width)
    log_in(page, "orga", "pw-orga")
    for name, url in ORGANIZER_PAGES:
        page.goto(url)
        _check(page, f"40-{name}-{width}")


def test_a_keyboard_user_skips_to_the_content_and_reaches_the_tabs(new_page, busy_competition):
    page = new_page()
    page.goto("/c/tiny/leaderboard/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    # The first stop inside the content is the first tab of the competition.
    expect(page.get_by_role("link", name="Overview")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{page.url.split('/c/')[0]}/c/tiny/")
