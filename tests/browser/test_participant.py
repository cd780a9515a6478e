"""A participant's path through the site in a real browser, scored by a real worker."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from competitions.models import Submission
from competitions.services.teams import competition_join
from tests import factories
from tests.browser.conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCORING_TIMEOUT_MS = 60_000


def _file(content: bytes, name: str = "predictions.csv") -> dict:
    return {"name": name, "mimeType": "text/csv", "buffer": content}


def test_a_newcomer_signs_up_joins_downloads_submits_and_sees_the_team_ranked(
    new_page, worker, organizer
):
    competition = factories.make_competition(organizers=[organizer])
    page = new_page()

    page.goto("/")
    expect(page.get_by_role("heading", name="Competitions")).to_be_visible()
    screenshot(page, "01-competition-list")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Username").fill("newcomer")
    page.get_by_label("Email").fill("newcomer@example.org")
    page.get_by_label("Password", exact=True).fill("a-long-pass-phrase-42")
    page.get_by_label("Password confirmation").fill("a-long-pass-phrase-42")
    screenshot(page, "02-sign-up")
    page.get_by_role("button", name="Create my account").click()
    expect(page.get_by_text("Welcome, newcomer")).to_be_visible()

    page.get_by_role("link", name=competition.title, exact=True).click()
    screenshot(page, "03-competition-overview")
    page.get_by_role("link", name="Rules", exact=True).click()
    page.get_by_label("I have read the rules and accept them").check()
    page.get_by_role("button", name=f"Join {competition.title}").click()
    expect(page.get_by_text("You joined")).to_be_visible()

    page.get_by_role("link", name="Data", exact=True).click()
    screenshot(page, "04-data")
    with page.expect_download() as download:
        page.get_by_role("link", name="sample_submission.csv").first.click()
    with open(download.value.path(), "rb") as f:
        assert f.read() == factories.predictions_csv()

    page.get_by_role("link", name="Submit", exact=True).click()
    page.get_by_label("Predictions file").set_input_files(_file(factories.perfect_predictions()))
    expect(page.locator("#chosen")).to_contain_text("predictions.csv")
    page.get_by_label("Method name").fill("oracle")
    page.get_by_label("Hardware used for training").fill("a laptop, 1 minute")
    screenshot(page, "05-submit-form")
    page.evaluate("window.stillTheSamePage = true")
    page.get_by_role("button", name="Upload and score").click()

    expect(page.locator("#progress-bar")).to_have_attribute("value", "100")
    expect(page.locator("#status-text")).to_have_text("Scored", timeout=SCORING_TIMEOUT_MS)
    assert page.evaluate("window.stillTheSamePage") is True, "the page reloaded"
    expect(page.locator("#scores")).to_contain_text("1.00000")
    screenshot(page, "06-submit-scored")
    submission = Submission.objects.get()
    assert (submission.method_name, submission.hardware_declared) == (
        "oracle",
        "a laptop, 1 minute",
    )

    page.get_by_role("link", name="Leaderboard", exact=True).click()
    mine = page.locator("tr.mine")
    expect(mine).to_have_count(1)
    expect(mine).to_contain_text("newcomer")
    expect(mine.locator("td").first).to_have_text("1")
    screenshot(page, "07-leaderboard")

    page.get_by_role("link", name="Statistics").click()
    expect(page.locator("svg.plot")).to_have_count(2)
    screenshot(page, "08-statistics")
    page.get_by_role("link", name="My submissions").click()
    expect(page.get_by_role("cell", name="oracle", exact=False)).to_be_visible()
    screenshot(page, "09-my-submissions")


def test_a_bad_file_fails_and_every_problem_is_listed_with_its_line(
    new_page, worker, organizer, participant
):
    competition = factories.make_competition(organizers=[organizer])
    competition_join(competition=competition, user=participant, accept_rules=True)
    page = new_page()
    log_in(page, "alice", "pw-alice")
    page.goto(f"/c/{competition.slug}/submit/")

    bad = b"id,label\nid0,0.1\nid0,0.2\nid1,banana\n"
    page.get_by_label("Predictions file").set_input_files(_file(bad, "bad.csv"))
    page.get_by_role("button", name="Upload and score").click()

    expect(page.locator("#status-text")).to_have_text("Failed", timeout=SCORING_TIMEOUT_MS)
    problems = page.locator("#problems tbody tr")
    expect(problems.first).to_be_visible()
    rows = [
        [cell.strip() for cell in row.locator("td").all_inner_texts()] for row in problems.all()
    ]
    lines = {row[0] for row in rows}
    assert {"3", "4"} <= lines, rows  # the repeated id0 and "banana"
    assert any("banana" in row[2] for row in rows)
    assert any("missing" in row[2].lower() for row in rows), rows
    expect(page.locator("#status-detail")).to_contain_text("problem")
    # The counter is the server's (selectors.team_quota): a rejected file doesn't count.
    expect(page.locator("#quota-used")).to_have_text("0")
    screenshot(page, "10-submit-failed-with-problems")

    # The same list is on the submission's own page.
    page.get_by_role("link", name="My submissions").click()
    page.get_by_role("link", name=re.compile(r"problems?$")).click()
    expect(page.locator("#problems")).to_contain_text("banana")


def test_the_service_refusals_show_as_messages_not_crashes(new_page, organizer, participant):
    competition = factories.make_competition(organizers=[organizer], daily_limit=1)
    competition_join(competition=competition, user=participant, accept_rules=True)
    team = participant.teams.get()
    factories.submission_row(team).save(force_insert=True)
    page = new_page()
    log_in(page, "alice", "pw-alice")
    page.goto(f"/c/{competition.slug}/submit/")
    page.get_by_label("Predictions file").set_input_files(_file(factories.perfect_predictions()))
    page.get_by_role("button", name="Upload and score").click()

    alert = page.locator("#submit-alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("used its 1 submissions for today")
    expect(alert).to_contain_text("You can submit again from")
    expect(alert).to_contain_text("00:00 UTC")
    screenshot(page, "11-submit-quota-refused")
