"""The notifications' pages: the bell in every page's header, the list it leads to, marking
read, and the choices on the account page. A user only ever sees and touches their own."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from notifications.models import DEFAULTS, Kind, Notification, NotificationPreference
from notifications.services import Notice, notifications_create
from tests.conftest import persona_user

pytestmark = pytest.mark.django_db


def _notify(user, title="Submission #1 to Tiny is scored", url="/c/tiny/submissions/1/", **kw):
    notice = Notice(kind=kw.pop("kind", Kind.SUBMISSION_SCORED), title=title, url=url, **kw)
    [row] = notifications_create(notice=notice, user_ids=[user.pk])
    return row


def _bell(html: str) -> str:
    found = re.search(r'<a class="bell"[^>]*aria-label="([^"]*)"', html)
    assert found, "no bell in the header"
    return found[1]


def test_the_bell_counts_my_unread_notifications_only(client, participant, other_participant):
    client.force_login(participant)
    assert _bell(client.get("/").content.decode()) == "Notifications"
    _notify(participant)
    _notify(participant, title="Another")
    _notify(other_participant)
    html = client.get("/").content.decode()
    assert _bell(html) == "Notifications, 2 unread"
    assert '<span class="bell-count" aria-hidden="true">2</span>' in html


def test_an_anonymous_visitor_has_no_bell(client, db):
    assert 'class="bell"' not in client.get("/").content.decode()


def test_the_bell_of_a_kept_leaderboard_page_follows_new_notifications(
    client, competition, participant
):
    client.force_login(participant)
    url = f"/c/{competition.slug}/leaderboard/"
    client.get(url)
    assert _bell(client.get(url).content.decode()) == "Notifications"
    _notify(participant)
    assert _bell(client.get(url).content.decode()) == "Notifications, 1 unread"


def test_the_list_shows_my_notifications_newest_first_and_never_anothers(
    client, participant, other_participant
):
    _notify(participant, title="First of mine")
    _notify(participant, title="Second of mine")
    _notify(other_participant, title="Bob's secret")
    client.force_login(participant)
    html = client.get("/notifications/").content.decode()
    assert html.index("Second of mine") < html.index("First of mine")
    assert "Bob&#x27;s secret" not in html
    assert "Bob's secret" not in html


def test_an_email_only_notification_is_not_listed_nor_counted(client, participant):
    NotificationPreference.objects.create(
        user=participant, kind=Kind.SUBMISSION_FAILED, in_site=False, email=True
    )
    _notify(participant, title="Failed, by e-mail", kind=Kind.SUBMISSION_FAILED)
    client.force_login(participant)
    html = client.get("/notifications/").content.decode()
    assert "Failed, by e-mail" not in html
    assert _bell(html) == "Notifications"


def test_the_pages_need_a_signed_in_user(client, participant):
    row = _notify(participant)
    assert client.get("/notifications/").status_code == 302
    assert client.post("/notifications/read/").status_code == 302
    assert client.post(f"/notifications/{row.pk}/open/").status_code == 302
    assert client.post("/notifications/preferences/").status_code == 302
    row.refresh_from_db()
    assert row.read_at is None


def test_opening_a_notification_marks_it_read_and_goes_where_it_points(client, participant):
    row = _notify(participant)
    client.force_login(participant)
    response = client.post(f"/notifications/{row.pk}/open/")
    assert response.status_code == 302
    assert response["Location"] == "/c/tiny/submissions/1/"
    row.refresh_from_db()
    assert row.read_at is not None
    assert _bell(client.get("/notifications/").content.decode()) == "Notifications"


def test_opening_is_a_post(client, participant):
    row = _notify(participant)
    client.force_login(participant)
    assert client.get(f"/notifications/{row.pk}/open/").status_code == 405
    row.refresh_from_db()
    assert row.read_at is None


@pytest.mark.parametrize("persona", ["outsider", "other_participant", "other_organizer"])
def test_another_users_notification_cannot_be_opened_nor_marked_read(
    client, request, competition, participant, persona
):
    row = _notify(participant)
    client.force_login(persona_user(request, persona))
    assert client.post(f"/notifications/{row.pk}/open/").status_code == 404
    client.post("/notifications/read/")
    row.refresh_from_db()
    assert row.read_at is None


def test_marking_all_read_marks_mine_only(client, participant, other_participant):
    mine = [_notify(participant), _notify(participant, title="Two")]
    theirs = _notify(other_participant)
    client.force_login(participant)
    response = client.post("/notifications/read/", follow=True)
    assert "Marked 2 notifications read." in response.content.decode()
    assert all(Notification.objects.get(pk=n.pk).read_at for n in mine)
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_a_notification_pointing_off_site_is_not_followed(client, participant):
    row = _notify(participant, url="https://evil.example/")
    client.force_login(participant)
    assert client.post(f"/notifications/{row.pk}/open/")["Location"] == "/notifications/"


def test_the_account_page_shows_the_defaults_and_saves_my_choices(client, participant):
    client.force_login(participant)
    html = client.get("/account/").content.decode()
    assert 'id="notifications"' in html
    for kind, (in_site, email) in DEFAULTS.items():
        assert f'name="site:{kind}"' in html
        checked_site = re.search(rf'name="site:{kind}"[^>]*checked', html) is not None
        checked_email = re.search(rf'name="email:{kind}"[^>]*checked', html) is not None
        assert (checked_site, checked_email) == (in_site, email), kind
    response = client.post(
        "/notifications/preferences/",
        {"site:submission_scored": "on", "email:submission_scored": "on"},
    )
    assert response["Location"] == "/account/#notifications"
    chosen = {
        p.kind: (p.in_site, p.email)
        for p in NotificationPreference.objects.filter(user=participant)
    }
    assert chosen[Kind.SUBMISSION_SCORED] == (True, True)
    assert chosen[Kind.TEAM_INVITATION] == (False, False)
    assert len(chosen) == len(Kind.values)
    html = client.get("/account/").content.decode()
    assert re.search(r'name="email:submission_scored"[^>]*checked', html)
    assert not re.search(r'name="site:team_invitation"[^>]*checked', html)


def test_my_choices_are_mine_alone(client, participant, other_participant):
    client.force_login(participant)
    client.post("/notifications/preferences/", {})
    assert not NotificationPreference.objects.filter(user=other_participant).exists()
    assert NotificationPreference.objects.filter(user=participant).count() == len(Kind.values)


def test_the_list_pages_past_twenty_five(client, participant):
    now = timezone.now()
    Notification.objects.bulk_create(
        Notification(user=participant, kind=Kind.SUBMISSION_SCORED, title=f"N{i}", created_at=now)
        for i in range(30)
    )
    client.force_login(participant)
    first = client.get("/notifications/").content.decode()
    assert first.count('class="notification unread"') == 25
    assert "Page 1 of 2" in first
    assert client.get("/notifications/?page=2").content.decode().count("notification unread") == 5
