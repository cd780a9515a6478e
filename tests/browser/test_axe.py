"""axe-core over every main page, as an anonymous visitor, a participant and an organizer,
at desktop (1280 by 800) and phone (390 by 844) widths: no serious or critical finding.

Each page is also photographed (test-artifacts/screenshots/70-…), for a person to look at.
"""

from __future__ import annotations

import pytest

from competitions.models import Submission
from tests.browser.conftest import axe_findings, log_in, screenshot
from tests.browser.test_quality import ORGANIZER_PAGES, PARTICIPANT_PAGES, busy_competition

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

__all__ = ["busy_competition"]  # the fixture, shared with test_quality

WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}

ANONYMOUS_PAGES = [
    ("list", "/"),
    ("overview", "/c/tiny/"),
    ("data", "/c/tiny/data/"),
    ("rules", "/c/tiny/rules/"),
    ("leaderboard", "/c/tiny/leaderboard/"),
    ("leaderboard-sorted", "/c/tiny/leaderboard/?sort=-entries"),
    ("leaderboard-search", "/c/tiny/leaderboard/?sort=team&q=a"),
    ("leaderboard-no-match", "/c/tiny/leaderboard/?q=nobody"),
    ("statistics", "/c/tiny/statistics/"),
    ("log-in", "/accounts/login/"),
    ("sign-up", "/accounts/signup/"),
    ("not-found", "/no/such/page/"),
]


def _audit(page, axe_source: str, pages: list[tuple[str, str]], who: str, width: int) -> dict:
    found = {}
    for name, url in pages:
        page.goto(url)
        findings = axe_findings(page, axe_source)
        if findings:
            found[url] = findings
        screenshot(page, f"70-{who}-{name}-{width}")
    return found


def _entry_pages() -> list[tuple[str, str]]:
    scored = Submission.objects.filter(status="scored").order_by("pk")
    failed = Submission.objects.filter(status="failed").first()
    first = scored.first()
    assert first is not None, "the fixture has scored submissions"
    pages = [("entry", f"/c/tiny/entries/{first.pk}/")]
    if failed is not None:
        pages.append(("submission-failed", f"/c/tiny/submissions/{failed.pk}/"))
    return pages


@pytest.mark.parametrize("size", WIDTHS, ids=list(WIDTHS))
def test_the_anonymous_pages_have_no_serious_accessibility_finding(
    new_page, busy_competition, axe_source, size
):
    width, height = WIDTHS[size]
    page = new_page(width=width, height=height)
    pages = ANONYMOUS_PAGES + _entry_pages()[:1]
    assert _audit(page, axe_source, pages, "anonymous", width) == {}


@pytest.mark.parametrize("size", WIDTHS, ids=list(WIDTHS))
def test_the_participant_pages_have_no_serious_accessibility_finding(
    new_page, busy_competition, axe_source, size
):
    width, height = WIDTHS[size]
    page = new_page(width=width, height=height)
    log_in(page, "alice", "pw-alice")
    pages = PARTICIPANT_PAGES + _entry_pages()
    assert _audit(page, axe_source, pages, "participant", width) == {}


@pytest.mark.parametrize("size", WIDTHS, ids=list(WIDTHS))
def test_the_organizer_pages_have_no_serious_accessibility_finding(
    new_page, busy_competition, axe_source, size
):
    width, height = WIDTHS[size]
    page = new_page(width=width, height=height)
    log_in(page, "orga", "pw-orga")
    pages = [*ORGANIZER_PAGES, ("organize-private-board", "/c/tiny/leaderboard/?split=private")]
    assert _audit(page, axe_source, pages, "organizer", width) == {}
