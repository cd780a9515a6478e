"""Pages people scan (issue 14 parts 4 and 5), each journey driven in a real browser at
desktop (1280 by 800) and phone (390 by 844) sizes, checked with axe (no serious or
critical finding) and photographed (test-artifacts/screenshots/80-…).

- The competition cards: summary, status, a deadline that counts down by itself, counts,
  the prize; the Overview's countdown.
- The leaderboard: sorting by a column and searching a team by name, ranks unchanged;
  a member's "your best / your last" summary.
- The entry page: the claim, the key facts and the method card first; the manifest behind
  a disclosure and as a named download; the host's name and versions for the team only
  (anonymous: nulled, page and download alike).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from competitions.models import Competition
from competitions.services.submissions import submission_create
from competitions.services.teams import competition_join
from judging.services import submission_score
from tests import factories
from tests.browser.conftest import axe_findings, log_in, screenshot
from tests.pages.builders import scored, team_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def _checked(page, axe_source: str, name: str) -> None:
    """No serious or critical axe finding, no sideways scrolling; photographed."""
    assert axe_findings(page, axe_source) == [], name
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: the page scrolls sideways by {overflow}px"
    screenshot(page, name)


@pytest.mark.parametrize("size", SIZES, ids=list(SIZES))
def test_a_visitor_scans_the_cards_and_their_countdown_keeps_time(
    new_page, organizer, participant, axe_source, size
):
    dated = factories.make_competition(slug="dated", organizers=[organizer])
    Competition.objects.filter(pk=dated.pk).update(
        description="# Dated\n\nPredict **which** mass is malignant.\n\nMore below.",
        prize="$500 and a talk at the workshop",
    )
    # A whole minute ahead, so that the page's clock starts where the server's was.
    now = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    dated.phases.update(end_at=now + timedelta(days=3, hours=2, minutes=30))
    alice = competition_join(competition=dated, user=participant, accept_rules=True).team
    scored(alice, 0.8)
    scored(alice, 0.9)
    scored(team_for(dated, "bob"), 0.7)
    factories.make_competition(slug="endless", organizers=[organizer]).phases.update(end_at=None)
    width, height = SIZES[size]
    page = new_page(width=width, height=height)
    page.clock.install(time=now)
    page.goto("/")
    card = page.locator(".card").filter(has_text="Competition dated")
    expect(card).to_contain_text("Predict which mass is malignant.")
    expect(card).to_contain_text("Open: ends in")
    expect(card).to_contain_text("2 teams")
    expect(card).to_contain_text("3 submissions")
    expect(card).to_contain_text("Prize: $500 and a talk at the workshop")
    countdown = card.locator(".countdown")
    expect(countdown).to_have_text(re.compile(r"^3\xa0days, 2\xa0hours$"))
    expect(card.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    endless = page.locator(".card").filter(has_text="Competition endless")
    expect(endless).to_contain_text("Open-ended: no deadline")
    _checked(page, axe_source, f"80-cards-{size}")
    # A day later, without reloading: the script has counted down.
    page.clock.fast_forward("24:00:00")
    expect(countdown).to_have_text(re.compile(r"^2\xa0days, 2\xa0hours$"))
    page.clock.fast_forward(((2 * 24 + 2) * 3600 + 25 * 60) * 1000)  # 5 minutes before the end
    expect(countdown).to_have_text(re.compile(r"^(5|4)\xa0minutes$"))
    # The Overview counts down the same way.
    page.get_by_role("link", name="Competition dated", exact=True).click()
    expect(page.locator(".facts")).to_contain_text(re.compile(r"ends in \d"))
    _checked(page, axe_source, f"80-overview-{size}")


def _board_of_six(organizer, participant) -> Competition:
    competition = factories.make_competition(organizers=[organizer])
    alice = competition_join(competition=competition, user=participant, accept_rules=True).team
    scored(alice, 0.88, minutes_ago=200)
    scored(alice, 0.80, minutes_ago=5)
    for name, value, ago in (
        ("zed", 0.95, 100),
        ("Bea", 0.88, 90),
        ("amy", 0.70, 80),
        ("carl", 0.60, 70),
        ("dora", 0.50, 60),
    ):
        scored(team_for(competition, name), value, minutes_ago=ago)
    return competition


def _teams(page) -> list[tuple[str, str]]:
    cells = page.locator("table.leaderboard tbody tr").evaluate_all(
        "rows => rows.map(r => [r.cells[0].innerText.trim(), r.cells[1].querySelector('a').innerText])"
    )
    return [tuple(c) for c in cells]


@pytest.mark.parametrize("size", SIZES, ids=list(SIZES))
def test_a_visitor_sorts_the_board_and_finds_a_team_without_changing_ranks(
    new_page, organizer, participant, axe_source, size
):
    competition = _board_of_six(organizer, participant)
    width, height = SIZES[size]
    page = new_page(width=width, height=height)
    page.goto(f"/c/{competition.slug}/leaderboard/")
    by_rank = [
        ("1", "zed"),
        ("=2", "alice"),
        ("=2", "Bea"),
        ("4", "amy"),
        ("5", "carl"),
        ("6", "dora"),
    ]
    assert _teams(page) == by_rank
    header = page.locator("table.leaderboard th").filter(has_text="Team")
    header.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"sort=team"))
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert _teams(page) == sorted(by_rank, key=lambda r: r[1].lower())
    header.get_by_role("link").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    assert _teams(page) == sorted(by_rank, key=lambda r: r[1].lower(), reverse=True)
    _checked(page, axe_source, f"81-board-sorted-{size}")
    # Searching keeps the order asked for; the ranks stay the board's.
    page.get_by_label("Team name").fill("A")
    page.get_by_role("button", name="Find").click()
    expect(page.locator("#board-matches")).to_have_text("5 of the 6 teams match “A”.")
    assert _teams(page) == [
        ("6", "dora"),
        ("5", "carl"),
        ("=2", "Bea"),
        ("4", "amy"),
        ("=2", "alice"),
    ]
    expect(page).to_have_url(re.compile(r"sort=-team"))
    _checked(page, axe_source, f"81-board-search-{size}")
    page.get_by_role("link", name="Show every team").click()
    assert len(_teams(page)) == 6
    # Back to the board's own order from the Rank column.
    page.locator("table.leaderboard th").filter(has_text="Rank").get_by_role("link").click()
    assert _teams(page) == by_rank


@pytest.mark.parametrize("size", SIZES, ids=list(SIZES))
def test_a_member_sees_their_best_and_their_last_above_the_board(
    new_page, organizer, participant, axe_source, size
):
    competition = _board_of_six(organizer, participant)
    width, height = SIZES[size]
    page = new_page(width=width, height=height)
    log_in(page, "alice", "pw-alice")
    page.goto(f"/c/{competition.slug}/leaderboard/")
    box = page.locator("section.standing")
    expect(box.get_by_role("heading")).to_have_text("Your team on the public leaderboard")
    expect(box.locator("#standing-best")).to_contain_text("ROC AUC 0.88000, rank 2 of 6")
    expect(box.locator("#standing-last")).to_contain_text("ROC AUC 0.80000")
    _checked(page, axe_source, f"82-board-standing-{size}")
    box.get_by_role("link", name="show on the board").click()
    expect(page.locator("tr.mine")).to_contain_text("alice")
    box.locator("#standing-best").get_by_role("link", name="0.88000").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("by alice")


def _scored_for_real(competition, user, settings):
    settings.HELDOUT_SCORER = "in-process"
    submission = submission_create(
        competition=competition,
        user=user,
        uploaded_file=factories.upload(factories.perfect_predictions()),
        method_name="oracle",
        description="Reads the labels.",
        hardware_declared="a laptop, 1 minute",
    )
    assert submission_score(submission_id=submission.pk)
    return submission


HOST_DETAILS = ("system_name", "kernel", "docker_version", "accelerator_driver_version")


@pytest.mark.parametrize("size", SIZES, ids=list(SIZES))
def test_the_entry_page_reads_as_a_summary_for_a_visitor_and_the_team(
    new_page, organizer, participant, settings, axe_source, size
):
    competition = factories.make_competition(organizers=[organizer])
    competition_join(competition=competition, user=participant, accept_rules=True)
    submission = _scored_for_real(competition, participant, settings)
    width, height = SIZES[size]
    for who in ("anonymous", "team"):
        page = new_page(width=width, height=height)
        if who == "team":
            log_in(page, "alice", "pw-alice")
        page.goto(f"/c/{competition.slug}/entries/{submission.pk}/")
        # The claim, then the facts and the method card, before any JSON.
        expect(page.locator(".claim").first).to_contain_text("Given a laptop, 1 minute")
        facts = page.locator("#entry-facts")
        for label in ("Scorer", "Data version", "Training hardware", "Scored on"):
            expect(facts.locator("dt").filter(has_text=label)).to_have_count(1)
        expect(facts).to_contain_text("Task version 1")
        expect(page.locator("main")).to_contain_text("Reads the labels.")
        disclosure = page.locator("details#manifest")
        expect(disclosure.locator("pre")).not_to_be_visible()
        assert "kernel" not in page.locator("main").inner_text()
        _checked(page, axe_source, f"83-entry-{who}-{size}")
        disclosure.locator("summary").click()
        shown = json.loads(disclosure.locator("pre").inner_text())
        with page.expect_download() as download:
            page.get_by_role("link", name="Download the manifest").click()
        assert download.value.suggested_filename == f"tiny-entry-{submission.pk}-manifest.json"
        with open(download.value.path()) as f:
            downloaded = json.load(f)
        assert downloaded == shown  # the page's copy is the download's
        for key in HOST_DETAILS:
            if who == "anonymous":
                assert downloaded["host"][key] is None, key
                assert f"host.{key}" in downloaded["withheld"]
        if who == "team":
            assert downloaded["host"]["kernel"], downloaded["host"]
            assert not any(p.startswith("host.") for p in downloaded.get("withheld", []))
        else:
            expect(page.locator("main")).to_contain_text("without the host's name and versions")
        _checked(page, axe_source, f"83-entry-{who}-manifest-{size}")
