"""An organizer's path in a real browser: import a bundle in the admin, watch the
dashboard, finalize; and an outsider kept out of the organizer pages."""

from __future__ import annotations

import zipfile

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from competitions.admin import organizers_group_sync
from competitions.models import Competition
from competitions.services.submissions import submission_create
from competitions.services.teams import competition_join
from tests import factories
from tests.browser.conftest import log_in, screenshot
from tests.competitions.test_bundles import IDS, bundle_yaml, write_bundle
from tests.worker_process import wait_for_status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _bundle_zip(tmp_path, slug: str) -> bytes:
    folder = write_bundle(tmp_path / slug, bundle_yaml(slug=slug, title="Imported in a browser"))
    path = tmp_path / f"{slug}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for item in sorted(folder.rglob("*")):
            zf.write(item, item.relative_to(folder).as_posix())
    return path.read_bytes()


def _staff_organizer() -> User:
    user = User.objects.create_user("olga", "olga@example.org", "pw-olga", is_staff=True)
    user.groups.add(organizers_group_sync())
    return user


def _scored_submission(competition: Competition, username: str, value: float, worker) -> None:
    """A participant's submission, scored by the real worker."""
    user = factories.make_user(username)
    competition_join(competition=competition, user=user, accept_rules=True)
    content = "id,label\n" + "".join(
        f"{rid},{value if i >= 5 else 1 - value}\n" for i, rid in enumerate(IDS)
    )
    submission = submission_create(
        competition=competition, user=user, uploaded_file=factories.upload(content.encode())
    )
    proc, log = worker
    assert wait_for_status(submission.pk, {"scored", "failed"}, proc, log) == "scored"


def test_an_organizer_imports_a_bundle_in_the_admin_then_finalizes_and_the_private_board_appears(
    new_page, worker, tmp_path
):
    _staff_organizer()
    page = new_page()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill("pw-olga")
    page.get_by_role("button", name="Log in").click()

    page.goto("/admin/competitions/competition/")
    page.get_by_role("link", name="Import bundle").click()
    page.locator("input[name=bundle]").set_input_files(
        {
            "name": "bundle.zip",
            "mimeType": "application/zip",
            "buffer": _bundle_zip(tmp_path, "from-admin"),
        }
    )
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("Imported “Imported in a browser”")).to_be_visible()
    competition = Competition.objects.get(slug="from-admin")

    _scored_submission(competition, "pat", 0.8, worker)
    page.goto("/")
    page.get_by_role("link", name="Imported in a browser", exact=True).click()
    page.get_by_role("link", name="Organize").click()
    expect(page.locator("#queue-depth")).to_have_text("0")
    expect(page.get_by_text("participants")).to_be_visible()
    screenshot(page, "20-organize-dashboard")
    page.get_by_role("link", name="Data", exact=True).last.click()
    expect(page.get_by_text("passes validation against the ground truth")).to_be_visible()
    screenshot(page, "21-organize-data")
    page.get_by_role("link", name="Phases and limits").click()
    screenshot(page, "22-organize-phases")

    # Before finalizing, visitors see no private board.
    visitor = new_page()
    visitor.goto(f"/c/{competition.slug}/leaderboard/")
    expect(visitor.get_by_role("link", name="Private")).to_have_count(0)

    page.get_by_role("link", name="Dashboard").click()
    page.get_by_label("I understand; reveal the private leaderboard").check()
    page.get_by_role("button", name="Finalize the competition").click()
    expect(page.get_by_text("The competition is finalized")).to_be_visible()

    visitor.goto(f"/c/{competition.slug}/leaderboard/")
    visitor.get_by_role("link", name="Private").click()
    expect(visitor.get_by_role("heading", name="The private leaderboard")).to_be_visible()
    # One team; the platform's reference rows are not teams.
    expect(visitor.locator("table.leaderboard tbody tr:not(.reference)")).to_have_count(1)
    expect(visitor.locator("table.leaderboard tbody tr:not(.reference)")).to_contain_text("pat")
    screenshot(visitor, "23-private-leaderboard")


def test_the_organizer_pages_turn_away_outsiders_and_participants(new_page, organizer, outsider):
    competition = factories.make_competition(organizers=[organizer])
    factories.make_competition(slug="secret", organizers=[organizer], visibility="invite_only")
    page = new_page()
    log_in(page, "charlie", "pw-charlie")

    page.goto(f"/c/{competition.slug}/organize/")
    expect(page.get_by_role("heading", name="You can't do that here")).to_be_visible()
    screenshot(page, "24-organize-forbidden")
    expect(page.get_by_role("link", name="Organize")).to_have_count(0)

    response = page.goto("/c/secret/organize/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="We can't find that page")).to_be_visible()
    screenshot(page, "25-not-found")

    anonymous = new_page()
    anonymous.goto(f"/c/{competition.slug}/organize/")
    assert anonymous.url.endswith(f"/accounts/login/?next=/c/{competition.slug}/organize/")
