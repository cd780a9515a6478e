"""The organizer console's journeys in a real browser, at desktop (1280 by 800) and phone
(390 by 844) widths: the overview with its Markdown preview, phases, people, acting on a
selection of submissions behind a confirmation, and the log. axe-core checks every page on
the way (no serious or critical finding); each step is photographed
(test-artifacts/screenshots/80-console-…)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from competitions.models import Competition, OrganizerAction, Submission
from tests.browser.conftest import axe_findings, log_in, screenshot
from tests.browser.test_organizer_edges import crowded

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

__all__ = ["crowded"]  # the fixture, shared with test_organizer_edges

WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


@pytest.fixture(params=list(WIDTHS))
def orga_page(request, new_page, crowded):
    """The organizer, logged in, at one of the two widths; `.checked(name)` runs axe and
    takes the photograph."""
    width, height = WIDTHS[request.param]
    page = new_page(width=width, height=height)
    log_in(page, "orga", "pw-orga")
    axe_source = request.getfixturevalue("axe_source")

    def checked(name: str) -> None:
        assert axe_findings(page, axe_source) == [], name
        assert page.evaluate(OVERFLOW) <= 0, f"{name}: the page scrolls sideways"
        screenshot(page, f"80-console-{name}-{width}")

    page.checked = checked  # type: ignore[attr-defined]
    return page


def _error_of(page, field) -> str:
    expect(field).to_have_attribute("aria-invalid", "true")
    described = (field.get_attribute("aria-describedby") or "").split()
    return " ".join(page.locator(f"#{d}").inner_text() for d in described)


def test_an_organizer_previews_the_overview_then_saves_it(orga_page):
    page = orga_page
    page.goto("/c/tiny/organize/")
    page.get_by_role("link", name="Overview and rules").click()
    page.checked("overview")
    page.get_by_label("Overview (Markdown)").fill("# Welcome\n\nPredict **the label**.")
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#preview-description")
    expect(preview.get_by_role("heading", name="Welcome")).to_be_visible()
    expect(preview.locator("strong")).to_have_text("the label")
    expect(page.get_by_label("Overview (Markdown)")).to_have_value(
        "# Welcome\n\nPredict **the label**."
    )
    assert Competition.objects.get(slug="tiny").description == ""
    page.checked("overview-preview")
    page.get_by_label("Why (for the log, optional)").fill("first draft")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("are saved")).to_be_visible()
    assert Competition.objects.get(slug="tiny").description.startswith("# Welcome")
    page.goto("/c/tiny/")
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()


def test_an_organizer_adds_a_phase_and_a_bad_end_date_is_shown_beside_its_field(orga_page):
    page = orga_page
    page.goto("/c/tiny/organize/phases/")
    page.checked("phases")
    new = page.locator("fieldset").filter(has_text="Add a phase")
    new.get_by_label("Name").fill("Final")
    new.get_by_label("Starts (UTC)").fill("2031-01-10T00:00")
    new.get_by_label("Ends (UTC, empty: never)").fill("2031-01-01T00:00")
    new.get_by_label("Submissions per team per UTC day").fill("2")
    page.get_by_role("button", name="Add the phase").click()
    new = page.locator("fieldset").filter(has_text="Add a phase")
    end = new.get_by_label("Ends (UTC, empty: never)")
    expect(end).to_have_value("2031-01-01T00:00")
    expect(new.get_by_label("Name")).to_have_value("Final")
    assert "A phase must end after it starts." in _error_of(page, end)
    expect(page.locator(".messages")).to_have_count(0)
    page.checked("phases-refused")
    end.fill("2031-02-01T00:00")
    page.get_by_role("button", name="Add the phase").click()
    expect(page.get_by_text("The phase “Final” is added.")).to_be_visible()
    expect(page.locator("legend").filter(has_text="2. Phase “Final”")).to_be_visible()
    page.get_by_role("button", name="Delete the phase Final").click()
    expect(page.get_by_text("The phase “Final” is deleted.")).to_be_visible()
    assert list(Competition.objects.get(slug="tiny").phases.values_list("name", flat=True)) == [
        "Main"
    ]


def test_an_organizer_manages_organizers_and_invitations(orga_page, outsider):
    page = orga_page
    page.goto("/c/tiny/organize/people/")
    page.checked("people")
    field = page.get_by_label("Username of the new organizer")
    field.fill("nobody-here")
    page.get_by_role("button", name="Add the organizer").click()
    field = page.get_by_label("Username of the new organizer")
    expect(field).to_have_value("nobody-here")
    assert 'No user is named "nobody-here"' in _error_of(page, field)
    page.checked("people-refused")
    field.fill("charlie")
    page.get_by_role("button", name="Add the organizer").click()
    expect(page.locator("#organizers")).to_contain_text("charlie")
    page.get_by_label("Username to give access").fill("charlie")
    page.get_by_role("button", name="Invite").click()
    expect(page.locator("#invitees")).to_contain_text("charlie")
    page.get_by_role("button", name="Withdraw the invitation of charlie").click()
    expect(page.locator("#invitees")).to_contain_text("Nobody is invited.")
    page.get_by_role("button", name="Remove organizer charlie").click()
    expect(page.locator("#organizers")).not_to_contain_text("charlie")
    page.checked("people-done")


def test_an_organizer_disqualifies_a_selection_after_a_confirmation_stating_the_count(orga_page):
    page = orga_page
    page.goto("/c/tiny/organize/submissions/?q=erin")
    page.checked("submissions")
    numbers = [
        int(n) for n in Submission.objects.filter(team__name="erin").values_list("pk", flat=True)
    ]
    for number in numbers:
        page.get_by_label(f"Select #{number}").check()
    page.get_by_label("With the ticked submissions").select_option("disqualify")
    page.get_by_role("button", name="Review the selection").click()
    expect(page.get_by_role("heading", name="Disqualify 2 submissions?")).to_be_visible()
    assert not Submission.objects.filter(is_disqualified=True).exists()
    page.checked("bulk-confirm")
    confirm = page.get_by_role("button", name="Yes, disqualify 2")
    confirm.click()
    reason = page.get_by_label("Reason to disqualify (each team sees it)")
    assert reason.evaluate("el => el.validationMessage"), "no message asks for the reason"
    assert not Submission.objects.filter(is_disqualified=True).exists()
    reason.fill("the same file twice")
    confirm.click()
    expect(page.get_by_text("2 submissions disqualified.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"q=erin"))
    assert set(Submission.objects.filter(is_disqualified=True).values_list("pk", flat=True)) == set(
        numbers
    )
    page.get_by_role("link", name="Log").click()
    rows = page.locator("#log tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("the same file twice")
    expect(rows.first).to_contain_text("orga")
    page.checked("log")
    assert OrganizerAction.objects.count() == 2


def test_an_organizer_rescores_a_selection_and_cancelling_changes_nothing(orga_page):
    page = orga_page
    page.goto("/c/tiny/organize/submissions/?q=erin")
    for box in page.locator("input[name=ids]").all():
        box.check()
    page.get_by_role("button", name="Review the selection").click()
    expect(page.get_by_role("heading", name="Rescore 2 submissions?")).to_be_visible()
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(re.compile(r"q=erin"))
    assert not Submission.objects.filter(status="queued").exists()
    for box in page.locator("input[name=ids]").all():
        box.check()
    page.get_by_role("button", name="Review the selection").click()
    page.get_by_role("button", name="Yes, rescore 2").click()
    expect(page.get_by_text("2 submissions queued for scoring again.")).to_be_visible()
    assert Submission.objects.filter(status="queued").count() == 2


def test_the_log_is_not_shown_to_a_participant(new_page, crowded):
    page = new_page(width=390, height=844)
    log_in(page, "alice", "pw-alice")
    page.goto("/c/tiny/organize/")
    expect(page.get_by_role("link", name="Log")).to_have_count(0)
    response = page.goto("/c/tiny/organize/log/")
    assert response is not None
    assert response.status == 403


@pytest.mark.parametrize("size", WIDTHS, ids=list(WIDTHS))
def test_the_admin_says_heldout_administration(new_page, crowded, axe_source, size):
    width, height = WIDTHS[size]
    page = new_page(width=width, height=height)
    log_in(page, "orga", "pw-orga")
    page.goto("/admin/")
    expect(page.get_by_role("link", name="Heldout administration")).to_be_visible()
    expect(page).to_have_title(re.compile("Heldout administration"))
    screenshot(page, f"80-console-admin-{width}")
