"""The account's webhooks page: add a hook (its secret shown once), ping, pause, remove, and
read its deliveries; every hook's actions are its owner's alone."""

from __future__ import annotations

import re

import pytest
from django.test import Client, override_settings

from competitions.models import Webhook
from competitions.services.webhooks import webhook_create

pytestmark = pytest.mark.django_db

URL = "https://example.org/hook"
EVENTS = ["submission.scored", "submission.failed"]
ADD = {"url": URL, "events": EVENTS}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_adding_a_hook_shows_its_secret_once_and_lists_it(participant, competition):
    client = _client(participant)
    response = client.post("/account/webhooks/", {**ADD, "competition": competition.pk})
    assert response.status_code == 200
    secret = Webhook.objects.get(owner=participant).secret
    assert secret in response.content.decode()
    page = client.get("/account/webhooks/").content.decode()
    assert "https://example.org/hook" in page
    assert "submission.failed, submission.scored" in page
    assert competition.title in page
    assert secret not in page
    assert 'href="/account/webhooks/"' in client.get("/account/").content.decode()


def test_a_hook_is_limited_only_to_a_competition_of_mine(participant, other_competition):
    response = _client(participant).post(
        "/account/webhooks/", {**ADD, "competition": other_competition.pk}
    )
    assert response.status_code == 400
    assert not Webhook.objects.exists()


@override_settings(HELDOUT_WEBHOOKS_ALLOW_PRIVATE=False)
def test_the_page_refuses_a_loopback_endpoint(participant):
    response = _client(participant).post("/account/webhooks/", {**ADD, "url": "http://127.0.0.1/"})
    assert response.status_code == 400
    assert "private, loopback or reserved" in response.content.decode()


def test_the_owner_pings_pauses_and_removes_a_hook(participant):
    hook, _ = webhook_create(owner=participant, url=URL, events=EVENTS)
    client = _client(participant)
    client.post(f"/account/webhooks/{hook.pk}/ping/")
    page = client.get("/account/webhooks/").content.decode()
    assert re.search(r"<td>ping</td>.*?<td>pending</td><td>0</td>", page, re.S)
    client.post(f"/account/webhooks/{hook.pk}/pause/")
    hook.refresh_from_db()
    assert not hook.active
    assert "(paused)" in client.get("/account/webhooks/").content.decode()
    client.post(f"/account/webhooks/{hook.pk}/delete/")
    assert not Webhook.objects.exists()


def test_no_one_else_sees_or_touches_my_hook(
    participant, competition, other_participant, other_organizer, outsider, other_competition
):
    hook, _ = webhook_create(owner=participant, url=URL, events=EVENTS)
    for user in (outsider, other_participant, other_organizer):
        client = _client(user)
        assert URL not in client.get("/account/webhooks/").content.decode()
        for action in ("ping", "pause", "resume", "delete"):
            response = client.post(f"/account/webhooks/{hook.pk}/{action}/")
            assert response.status_code == 404, (user, action)
    hook.refresh_from_db()
    assert hook.active
    assert not hook.deliveries.exists()
    anonymous = Client()
    assert anonymous.get("/account/webhooks/").status_code == 302
    assert anonymous.post(f"/account/webhooks/{hook.pk}/delete/").status_code == 302
    assert Webhook.objects.exists()
