"""The organizer's rough edges (issue 14) in a real browser: finding a submission by team,
user or id; staying on the same filtered page after disqualifying; a confirmation before
rescoring everything; a reason asked for before the server sees the form; and refusals
shown beside the field with what was typed kept."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from competitions.models import OrganizerJob, Submission
from competitions.services.lifecycle import competition_finalize
from competitions.services.teams import competition_join
from tests import factories
from tests.browser.conftest import log_in, screenshot
from tests.pages.builders import scored, team_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def crowded(organizer, participant):
    """60 scored submissions of "dave", 3 of alice's team, 2 of "erin"."""
    competition = factories.make_competition(organizers=[organizer], daily_limit=100)
    dave = team_for(competition, "dave")
    for i in range(60):
        scored(dave, 0.5 + i / 200, minutes_ago=600 - i)
    alice = competition_join(competition=competition, user=participant, accept_rules=True).team
    for i in range(3):
        scored(alice, 0.6, minutes_ago=30 - i)
    erin = team_for(competition, "erin")
    scored(erin, 0.7, minutes_ago=20)
    scored(erin, 0.72, minutes_ago=10)
    return competition


def test_an_organizer_finds_submissions_by_team_user_or_id(new_page, crowded):
    page = new_page()
    log_in(page, "orga", "pw-orga")
    page.goto("/c/tiny/organize/submissions/")
    search = page.get_by_label("Team, user or #id")
    search.fill("erin")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.get_by_text("2 submissions")).to_be_visible()
    search = page.get_by_label("Team, user or #id")
    expect(search).to_have_value("erin")
    wanted = Submission.objects.filter(team__name="dave").order_by("pk")[7]
    search.fill(f"#{wanted.pk}")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text(f"#{wanted.pk}")
    search = page.get_by_label("Team, user or #id")
    search.fill("alic")  # the submitter's username, not the team's name
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tbody tr")).to_have_count(3)
    screenshot(page, "55-organize-submissions-search-1280")


def test_disqualifying_keeps_the_page_and_the_filters(new_page, crowded):
    page = new_page()
    log_in(page, "orga", "pw-orga")
    page.goto("/c/tiny/organize/submissions/?q=dave&status=scored")
    page.get_by_role("link", name="Next").click()
    expect(page).to_have_url(re.compile(r"page=2"))
    row = page.locator("tbody tr").first
    number = row.locator("td").first.inner_text().strip("#")
    row.get_by_label(f"Reason to disqualify #{number}").fill("copied another team's file")
    row.get_by_role("button", name=f"Disqualify #{number}").click()
    expect(page.get_by_text(f"Submission #{number} is disqualified")).to_be_visible()
    url = page.url
    for kept in ("page=2", "q=dave", "status=scored"):
        assert kept in url, url
    expect(page.get_by_label("Team, user or #id")).to_have_value("dave")
    assert Submission.objects.get(pk=int(number)).is_disqualified


def test_a_missing_disqualify_reason_is_asked_for_before_sending(new_page, crowded):
    page = new_page()
    log_in(page, "orga", "pw-orga")
    page.goto("/c/tiny/organize/submissions/?q=erin")
    row = page.locator("tbody tr").first
    number = row.locator("td").first.inner_text().strip("#")
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    row.get_by_role("button", name=f"Disqualify #{number}").click()
    reason = row.get_by_label(f"Reason to disqualify #{number}")
    assert reason.evaluate("el => el.validationMessage"), "no message asks for the reason"
    page.wait_for_timeout(300)
    assert sent == []
    assert not Submission.objects.get(pk=int(number)).is_disqualified


def test_rescoring_everything_asks_for_a_confirmation_first(new_page, crowded):
    page = new_page()
    log_in(page, "orga", "pw-orga")
    page.goto("/c/tiny/organize/")
    page.get_by_role("button", name="Rescore all submissions").click()
    page.wait_for_timeout(300)
    assert OrganizerJob.objects.count() == 0, "one click queued a rescoring of everything"
    confirm = page.get_by_label("Yes, score all 65 submissions again")
    assert confirm.evaluate("el => el.validationMessage")
    confirm.check()
    page.get_by_role("button", name="Rescore all submissions").click()
    expect(page.get_by_text("queues 65 submission(s)")).to_be_visible()
    assert OrganizerJob.objects.count() == 1


def test_an_unknown_invitee_is_refused_beside_the_field_with_the_name_kept(
    new_page, organizer, participant
):
    competition = factories.make_competition(organizers=[organizer])
    competition_join(competition=competition, user=participant, accept_rules=True)
    page = new_page()
    log_in(page, "alice", "pw-alice")
    page.goto(f"/c/{competition.slug}/team/")
    field = page.get_by_label("Username to invite")
    field.fill("nobody-here")
    page.get_by_role("button", name="Invite").click()
    field = page.get_by_label("Username to invite")
    expect(field).to_have_value("nobody-here")
    expect(field).to_have_attribute("aria-invalid", "true")
    error = page.locator(f"#{field.get_attribute('aria-describedby').split()[-1]}")
    expect(error).to_contain_text('No user is named "nobody-here"')
    expect(page.locator(".messages")).to_have_count(0)
    screenshot(page, "56-team-invite-refused-1280")


def test_a_refused_limit_change_is_shown_in_its_form_with_the_values_kept(new_page, organizer):
    competition = factories.make_competition(organizers=[organizer])
    competition_finalize(competition=competition, by=organizer)
    page = new_page()
    log_in(page, "orga", "pw-orga")
    page.goto(f"/c/{competition.slug}/organize/phases/")
    page.get_by_label("Largest team size").fill("3")
    page.get_by_role("button", name="Save the limits").click()
    limits = page.locator("fieldset").filter(has_text="Teams")
    expect(limits.get_by_role("alert")).to_contain_text("finalized")
    expect(page.get_by_label("Largest team size")).to_have_value("3")
    expect(page.locator(".messages")).to_have_count(0)


def test_the_submissions_page_is_paginated_to_a_screenful_or_two(new_page, crowded):
    page = new_page(width=1280, height=800)
    log_in(page, "orga", "pw-orga")
    page.goto("/c/tiny/organize/submissions/")
    # 65 submissions on one page made it 5,446 px tall; 25 a page, with a way to the rest.
    expect(page.locator("tbody tr")).to_have_count(25)
    expect(page.get_by_text("Page 1 of 3")).to_be_visible()
    height = page.evaluate("() => document.documentElement.scrollHeight")
    assert height < 3500, height
    page.get_by_role("link", name="Next").click()
    expect(page.get_by_text("Page 2 of 3")).to_be_visible()


def test_a_refused_phase_end_is_shown_beside_its_field_with_the_values_kept(new_page, organizer):
    competition = factories.make_competition(organizers=[organizer])
    page = new_page()
    log_in(page, "orga", "pw-orga")
    page.goto(f"/c/{competition.slug}/organize/phases/")
    phase = page.locator("fieldset").filter(has_text="Phase “Main”")
    phase.get_by_label("Name").fill("Main stage")
    phase.get_by_label("Starts (UTC)").fill("2031-03-10T00:00")
    phase.get_by_label("Ends (UTC, empty: never)").fill("2031-03-01T00:00")
    phase.get_by_role("button", name="Save the phase").click()
    phase = page.locator("fieldset").filter(has_text="Phase “Main”")
    end = phase.get_by_label("Ends (UTC, empty: never)")
    expect(end).to_have_value("2031-03-01T00:00")
    expect(phase.get_by_label("Name")).to_have_value("Main stage")
    expect(end).to_have_attribute("aria-invalid", "true")
    error = page.locator(f"#{end.get_attribute('aria-describedby').split()[-1]}")
    expect(error).to_contain_text("A phase must end after it starts.")
    expect(page.locator(".messages")).to_have_count(0)
    assert competition.phases.get().name == "Main"
