"""The rough edges a visitor and a participant met (issue 14), each driven in a real
browser: the upload's progress in sight, the drop zone, the board after finalizing, the
competition cards, words instead of ids, the entry page, the favicon and the demo."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from competitions.models import Competition
from competitions.services.lifecycle import competition_finalize
from competitions.services.submissions import submission_create
from competitions.services.teams import competition_join
from judging.services import submission_score
from scoring.manifest import SCHEMA_PATH
from tests import factories
from tests.browser.conftest import axe_findings, log_in, screenshot
from tests.pages.builders import failed_invalid, scored, team_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IN_VIEWPORT = """el => { const r = el.getBoundingClientRect();
  return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0; }"""


def _joined(competition: Competition, user) -> None:
    competition_join(competition=competition, user=user, accept_rules=True)


def test_the_upload_progress_is_in_sight_when_the_upload_starts(new_page, organizer, participant):
    competition = factories.make_competition(organizers=[organizer])
    _joined(competition, participant)
    page = new_page(width=1280, height=800)
    log_in(page, "alice", "pw-alice")
    page.goto(f"/c/{competition.slug}/submit/")
    # Hold the upload's first piece, as a slow network would, to look at the page meanwhile.
    held = []
    page.route("**/api/v1/uploads/**", lambda route: held.append(route))
    page.get_by_label("Predictions file").set_input_files(
        {"name": "p.csv", "mimeType": "text/csv", "buffer": factories.perfect_predictions()}
    )
    page.get_by_label("Hardware used for training").fill("a laptop")
    page.get_by_role("button", name="Upload and score").scroll_into_view_if_needed()
    page.get_by_role("button", name="Upload and score").click()
    progress = page.locator("#upload-progress")
    expect(progress).to_be_visible()
    page.wait_for_function("() => !!document.getElementById('progress-bar')")
    assert page.locator("#progress-bar").evaluate(IN_VIEWPORT), "the progress bar is off-screen"
    assert page.get_by_role("button", name="Upload and score").evaluate(IN_VIEWPORT)
    screenshot(page, "50-upload-started-1280")
    for route in held:
        route.abort()


def test_clicking_anywhere_on_the_drop_zone_opens_the_file_picker(new_page, organizer, participant):
    competition = factories.make_competition(organizers=[organizer])
    _joined(competition, participant)
    page = new_page()
    log_in(page, "alice", "pw-alice")
    page.goto(f"/c/{competition.slug}/submit/")
    zone = page.locator("#dropzone")
    box = zone.bounding_box()
    assert box is not None
    with page.expect_file_chooser(timeout=3000) as chooser:
        # The zone's top-left corner: none of its controls is there.
        zone.click(position={"x": 8, "y": 8})
    chooser.value.set_files(
        {"name": "picked.csv", "mimeType": "text/csv", "buffer": factories.perfect_predictions()}
    )
    expect(page.locator("#chosen")).to_contain_text("picked.csv")


def test_after_finalizing_the_leaderboard_and_statistics_tabs_open_on_the_private_board(
    new_page, organizer, participant
):
    competition = factories.make_competition(organizers=[organizer])
    alice = competition_join(competition=competition, user=participant, accept_rules=True).team
    scored(alice, 0.7, 0.9)
    competition_finalize(competition=competition, by=organizer)
    page = new_page()
    page.goto(f"/c/{competition.slug}/")
    page.get_by_role("link", name="Leaderboard", exact=True).click()
    expect(page.get_by_role("heading", name="The private leaderboard")).to_be_visible()
    expect(page.locator("table.leaderboard tbody tr").first).to_contain_text("0.90000")
    page.get_by_role("link", name="Statistics", exact=True).click()
    expect(
        page.get_by_role("heading", name="Statistics of the private leaderboard")
    ).to_be_visible()
    # The public board is still one click away.
    page.get_by_role("link", name="Public", exact=True).click()
    expect(page.get_by_role("heading", name="Statistics of the public leaderboard")).to_be_visible()


def test_the_home_page_cards_say_what_when_who_and_the_prize(new_page, organizer, participant):
    from datetime import timedelta

    from django.utils import timezone

    dated = factories.make_competition(slug="dated", organizers=[organizer])
    Competition.objects.filter(pk=dated.pk).update(
        description="# Dated\n\nPredict **which** mass is malignant from 30 measurements.\n\nMore.",
        prize="$500 and a talk at the workshop",
    )
    dated.phases.update(end_at=timezone.now() + timedelta(days=3, hours=2))
    _joined(dated, participant)
    team_for(dated, "bob")
    endless = factories.make_competition(slug="endless", organizers=[organizer])
    endless.phases.update(end_at=None)
    for width in (1280, 390):
        page = new_page(width=width)
        page.goto("/")
        card = page.locator(".card").filter(has_text="Competition dated")
        expect(card).to_contain_text("Predict which mass is malignant from 30 measurements.")
        expect(card).to_contain_text("2 teams")
        expect(card).to_contain_text(re.compile(r"ends in 3\xa0days"))
        expect(card).to_contain_text("$500 and a talk at the workshop")
        expect(card.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-"))
        expect(page.locator(".card").filter(has_text="Competition endless")).to_contain_text(
            "Open-ended"
        )
        screenshot(page, f"51-competition-cards-{width}")
    page.goto("/c/endless/")
    expect(page.locator(".facts")).to_contain_text("Open-ended: no deadline")
    page.goto("/c/dated/")
    expect(page.locator(".facts")).to_contain_text(re.compile(r"in 3\xa0days"))


def test_tables_show_metric_labels_and_the_dashboard_problems_in_words(
    new_page, organizer, participant
):
    competition = factories.make_competition(organizers=[organizer])
    alice = competition_join(competition=competition, user=participant, accept_rules=True).team
    scored(alice, 0.8)
    failed_invalid(alice, [{"code": "not_numeric", "message": "x", "line": 4, "column": "label"}])
    page = new_page()
    log_in(page, "alice", "pw-alice")
    page.goto(f"/c/{competition.slug}/leaderboard/")
    headers = page.locator("table.leaderboard thead th").all_inner_texts()
    assert {"ROC AUC", "Accuracy"} <= set(headers), headers
    assert not {"roc_auc", "accuracy"} & set(headers), headers
    page.goto(f"/c/{competition.slug}/submissions/")
    expect(page.locator("thead")).to_contain_text("ROC AUC")
    expect(page.locator("thead")).not_to_contain_text("roc_auc")
    page.goto(f"/c/{competition.slug}/")
    expect(page.locator(".facts")).to_contain_text("also shown: Accuracy")
    organizer_page = new_page()
    log_in(organizer_page, "orga", "pw-orga")
    organizer_page.goto(f"/c/{competition.slug}/organize/")
    problems = organizer_page.locator("table").filter(has_text="What rejected files got wrong")
    expect(problems).to_contain_text("A value is not a number")
    expect(problems).not_to_contain_text("not_numeric")
    organizer_page.goto(f"/c/{competition.slug}/organize/submissions/")
    expect(organizer_page.locator("thead")).to_contain_text("ROC AUC")


def test_the_leaderboard_explains_itself_plainly_and_downloads_a_named_csv(new_page, organizer):
    competition = factories.make_competition(organizers=[organizer])
    scored(team_for(competition, "dave"), 0.8)
    page = new_page()
    page.goto(f"/c/{competition.slug}/leaderboard/")
    intro = page.locator("#board-intro")
    expect(intro).to_contain_text("Click a team to see how its score was measured")
    expect(intro).not_to_contain_text("task version")
    expect(intro).not_to_contain_text("manifest")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == "tiny-leaderboard-public.csv"


def test_the_favicon_is_served_and_the_pages_log_no_console_error(new_page, organizer):
    factories.make_competition(organizers=[organizer])
    page = new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto("/")
    page.goto("/c/tiny/leaderboard/")
    response = page.request.get("/favicon.ico")
    assert response.status == 200, response.status
    assert response.headers["content-type"].startswith("image/")
    assert page.locator("link[rel=icon]").count() == 1
    assert errors == [], errors


def _scored_for_real(competition, user, settings):
    settings.HELDOUT_SCORER = "in-process"
    submission = submission_create(
        competition=competition,
        user=user,
        uploaded_file=factories.upload(factories.perfect_predictions()),
        method_name="oracle",
        hardware_declared="a laptop, 1 minute",
    )
    assert submission_score(submission_id=submission.pk)
    return submission


def test_the_entry_page_reads_as_a_summary_with_the_manifest_behind_a_disclosure(
    new_page, organizer, participant, settings, axe_source
):
    competition = factories.make_competition(organizers=[organizer])
    _joined(competition, participant)
    submission = _scored_for_real(competition, participant, settings)
    for width in (1280, 390):
        page = new_page(width=width)
        page.goto(f"/c/{competition.slug}/entries/{submission.pk}/")
        facts = page.locator("#entry-facts")
        expect(facts).to_contain_text("Scorer")
        expect(facts).to_contain_text("Data version")
        expect(facts).to_contain_text("Task version 1")
        expect(facts).to_contain_text("a laptop, 1 minute")
        disclosure = page.locator("details#manifest")
        expect(disclosure).to_be_visible()
        expect(disclosure.locator("pre")).not_to_be_visible()
        body = page.locator("main").inner_text()
        assert "kernel" not in body
        assert "docker_version" not in body
        disclosure.locator("summary").click()
        expect(disclosure.locator("pre")).to_be_visible()
        shown = json.loads(disclosure.locator("pre").inner_text())
        _assert_host_details_withheld(shown)
        assert axe_findings(page, axe_source) == []
        screenshot(page, f"52-entry-{width}")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the manifest").click()
    assert download.value.suggested_filename == f"tiny-entry-{submission.pk}-manifest.json"
    with open(download.value.path()) as f:
        downloaded = json.load(f)
    assert downloaded["scores"]["public"]
    _assert_host_details_withheld(downloaded)
    # A signed-in reader gets the host's details.
    member = new_page()
    log_in(member, "alice", "pw-alice")
    member.goto(f"/c/{competition.slug}/entries/{submission.pk}/")
    member.locator("details#manifest summary").click()
    whole = json.loads(member.locator("details#manifest pre").inner_text())
    assert whole["host"]["kernel"], whole["host"]
    assert not any(path.startswith("host.") for path in whole.get("withheld", []))


def _assert_host_details_withheld(manifest: dict) -> None:
    """Nulled for an anonymous reader, the copy still valid against the schema."""
    for key in ("system_name", "kernel", "docker_version", "accelerator_driver_version"):
        assert manifest["host"][key] is None, (key, manifest["host"])
        assert f"host.{key}" in manifest["withheld"]
    assert manifest["host"]["host_processor_thread_count"] >= 1
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator(schema).validate(manifest)


def test_the_demo_says_teams_of_one_where_its_rules_do(new_page):
    call_command("demo_setup")
    page = new_page()
    page.goto("/c/breast-cancer/")
    expect(page.locator(".facts")).to_contain_text("one member")
    expect(page.locator(".facts")).not_to_contain_text("up to 5")
    page.goto("/c/breast-cancer/rules/")
    expect(page.locator("main")).to_contain_text("teams of one")
