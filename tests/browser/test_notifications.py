"""Notifications in a real browser, at desktop (1280 by 800) and phone (390 by 844) widths:
an invitation, a scored and a failed submission, a phase ending soon and a finalize reach
the bell; opening one marks it read and goes where it points; marking all read empties the
bell; the account page saves each kind's choices; it all works without JavaScript. axe-core
finds nothing serious or critical on any page. Screenshots: test-artifacts/screenshots/75-….
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from competitions.models import Membership, Phase, Submission
from competitions.services.events import submission_outcome_emit
from competitions.services.lifecycle import competition_finalize
from competitions.services.notices import phase_notices_send
from notifications.models import Kind, Notification, NotificationPreference
from tests import factories
from tests.browser.conftest import CHROMIUM, axe_findings, log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}


def _no_findings(page, axe_source: str) -> None:
    assert axe_findings(page, axe_source) == [], page.url


def _team(user, competition):
    return Membership.objects.get(user=user, competition=competition).team


def _events_for_alice(competition, participant) -> None:
    """A scored and a failed submission of alice's, a phase ending soon, then finalize."""
    team = _team(participant, competition)
    scored = factories.scored_submission(
        team,
        {"public": {"roc_auc": 0.875}, "private": {"roc_auc": 0.6125}},
        created_at=timezone.now() - timedelta(minutes=9),
    )
    submission_outcome_emit(submission_id=scored.pk)
    failed = factories.submission_row(
        team, status=Submission.Status.FAILED, failure=Submission.Failure.INVALID
    )
    failed.save()
    submission_outcome_emit(submission_id=failed.pk)
    now = timezone.now()
    Phase.objects.filter(competition=competition).update(end_at=now + timedelta(hours=3))
    phase_notices_send(now=now)
    competition_finalize(competition=competition)


@pytest.mark.parametrize("size", WIDTHS, ids=list(WIDTHS))
def test_a_participant_hears_of_each_event_through_the_bell_and_reads_them(
    new_page, competition, participant, other_participant, axe_source, size
):
    width, height = WIDTHS[size]
    # bob invites alice from his team page.
    bob = new_page(width=width, height=height)
    log_in(bob, "bob", "pw-bob")
    bob.goto(f"/c/{competition.slug}/team/")
    bob.get_by_label("Username to invite").fill("alice")
    bob.get_by_role("button", name="Invite", exact=True).click()
    bob.wait_for_url("**/team/")
    assert not Notification.objects.filter(user=other_participant).exists()

    page = new_page(width=width, height=height)
    log_in(page, "alice", "pw-alice")
    bell = page.get_by_role("link", name="Notifications, 1 unread")
    assert bell.is_visible()
    screenshot(page, f"75-bell-one-unread-{width}")
    _no_findings(page, axe_source)
    # By keyboard: the bell is a link in the tab order.
    bell.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/notifications/")
    page.get_by_role("button", name="bob invites you to team bob").click()
    page.wait_for_url(f"**/c/{competition.slug}/team/invitations/**")
    assert page.get_by_role("button", name="Accept and join bob").is_visible()
    assert page.get_by_role("link", name="Notifications", exact=True).is_visible()

    _events_for_alice(competition, participant)
    page.goto("/")
    bell = page.get_by_role("link", name="Notifications, 4 unread")
    assert bell.is_visible()
    bell.click()
    page.wait_for_url("**/notifications/")
    text = page.locator("main").inner_text()
    for said in ("is scored", "Public score: roc_auc 0.875", "failed", "ends soon", "is finalized"):
        assert said in text
    assert "0.6125" not in text  # the private score, revealed by finalize, is never told
    screenshot(page, f"75-notifications-list-{width}")
    _no_findings(page, axe_source)

    page.get_by_role("button", name="Mark all as read").click()
    page.wait_for_url("**/notifications/")
    assert page.get_by_text("Marked 4 notifications read.").is_visible()
    assert page.get_by_role("link", name="Notifications", exact=True).is_visible()
    screenshot(page, f"75-notifications-read-{width}")
    _no_findings(page, axe_source)


@pytest.mark.parametrize("size", WIDTHS, ids=list(WIDTHS))
def test_a_user_chooses_which_notifications_they_get_on_their_account_page(
    new_page, participant, axe_source, size
):
    width, height = WIDTHS[size]
    page = new_page(width=width, height=height)
    log_in(page, "alice", "pw-alice")  # lands on the account page
    section = page.locator("#notifications")
    section.scroll_into_view_if_needed()
    scored_by_email = page.get_by_label("A submission of your team is scored: by e-mail")
    phase_in_site = page.get_by_label("A phase of your competition opens: in the site")
    assert not scored_by_email.is_checked()
    assert phase_in_site.is_checked()
    screenshot(page, f"75-account-notifications-{width}")
    _no_findings(page, axe_source)
    # By keyboard: Space toggles a focused box.
    scored_by_email.focus()
    page.keyboard.press("Space")
    phase_in_site.uncheck()
    page.get_by_role("button", name="Save notification choices").click()
    page.wait_for_url("**/account/#notifications")
    assert page.get_by_text("Your notification choices are saved.").is_visible()
    assert page.get_by_label("A submission of your team is scored: by e-mail").is_checked()
    assert not page.get_by_label("A phase of your competition opens: in the site").is_checked()
    chosen = NotificationPreference.objects.get(user=participant, kind=Kind.SUBMISSION_SCORED)
    assert (chosen.in_site, chosen.email) == (True, True)
    _no_findings(page, axe_source)


def test_without_javascript_the_bell_the_list_and_marking_read_work(
    browser, live_server, competition, participant
):
    assert CHROMIUM.exists()
    failed = factories.submission_row(
        _team(participant, competition),
        status=Submission.Status.FAILED,
        failure=Submission.Failure.INVALID,
    )
    failed.save()
    submission_outcome_emit(submission_id=failed.pk)
    context = browser.new_context(
        base_url=live_server.url, java_script_enabled=False, viewport={"width": 390, "height": 844}
    )
    try:
        page = context.new_page()
        log_in(page, "alice", "pw-alice")
        page.get_by_role("link", name="Notifications, 1 unread").click()
        page.wait_for_url("**/notifications/")
        page.get_by_role("button", name=f"Submission #{failed.pk} to").click()
        page.wait_for_url(f"**/c/{competition.slug}/submissions/{failed.pk}/")
        assert Notification.objects.get().read_at is not None
        assert page.get_by_role("link", name="Notifications", exact=True).is_visible()
    finally:
        context.close()
