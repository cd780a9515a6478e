"""One throttle for every door (competitions/throttles.py): the pages and the admin's log in
count in the API's histories, in the shared cache, and every refusal is a 429 with
Retry-After. In one process here; tests/test_throttles_live.py runs several."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from rest_framework.settings import api_settings

from competitions.models import Submission
from competitions.throttles import ScopeThrottle, wait_in_words
from tests import factories

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(autouse=True)
def rates(monkeypatch):
    """Low rates, and no count left from an earlier test (the cache outlives transactions)."""
    cache.clear()
    monkeypatch.setitem(ScopeThrottle.THROTTLE_RATES, "auth", "3/minute")
    monkeypatch.setitem(ScopeThrottle.THROTTLE_RATES, "submissions", "2/minute")


def assert_throttled_page(response) -> None:
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "Too many attempts. Wait " in response.content.decode()


def _wrong_login(client: Client, url: str = "/accounts/login/", forwarded: str | None = None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post(url, {"username": "alice", "password": "wrong"}, headers=headers)


def test_the_login_page_refuses_the_fourth_wrong_password_and_says_how_long_to_wait(
    participant,
):
    client = Client()
    assert [_wrong_login(client).status_code for _ in range(3)] == [200, 200, 200]

    response = _wrong_login(client)

    assert_throttled_page(response)
    assert "Wait 1 minute, then try again" in response.content.decode()


def test_even_the_right_password_is_refused_once_throttled(participant):
    client = Client()
    for _ in range(3):
        _wrong_login(client)
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert_throttled_page(response)
    assert "_auth_user_id" not in client.session


def test_showing_the_login_form_is_not_counted(participant):
    client = Client()
    for _ in range(5):
        assert client.get("/accounts/login/").status_code == 200
    assert _wrong_login(client).status_code == 200


def test_the_admin_login_is_throttled(organizer):
    client = Client()
    for _ in range(3):
        assert _wrong_login(client, "/admin/login/").status_code == 200
    assert_throttled_page(_wrong_login(client, "/admin/login/"))


def test_the_login_page_admin_login_and_token_api_share_one_count_per_address(api, participant):
    client = Client()
    _wrong_login(client)
    _wrong_login(client, "/admin/login/")
    assert (
        api(None).post("/api/v1/auth/token/", {"username": "x", "password": "y"}).status_code == 400
    )

    refused = api(None).post("/api/v1/auth/token/", {"username": "alice", "password": "pw-alice"})

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert refused.json()["code"] == "throttled"
    assert_throttled_page(_wrong_login(Client()))


def test_signup_is_throttled(db):
    client = Client()
    for number in range(3):
        data = {"username": f"new{number}", "email": "x", "password1": "a", "password2": "b"}
        assert client.post("/accounts/signup/", data).status_code == 400
    data = {
        "username": "late",
        "email": "late@example.org",
        "password1": "p-9x!Lq2w",
        "password2": "p-9x!Lq2w",
    }
    assert_throttled_page(client.post("/accounts/signup/", data))
    assert not User.objects.filter(username="late").exists()


def test_password_reset_is_throttled(participant, mailoutbox):
    client = Client()
    for _ in range(3):
        response = client.post("/accounts/password/reset/", {"email": "alice@example.org"})
        assert response.status_code == 302
    assert_throttled_page(client.post("/accounts/password/reset/", {"email": "alice@example.org"}))
    assert len(mailoutbox) == 3


def test_password_change_is_throttled(participant):
    client = Client()
    client.force_login(participant)
    data = {"old_password": "wrong", "new_password1": "p-9x!Lq2w", "new_password2": "p-9x!Lq2w"}
    for _ in range(3):
        assert client.post("/accounts/password/change/", data).status_code == 200
    assert_throttled_page(client.post("/accounts/password/change/", data))


def test_token_creation_on_the_account_page_is_throttled(participant):
    client = Client()
    client.force_login(participant)
    for _ in range(3):
        assert client.post("/account/token/").status_code == 302
    assert_throttled_page(client.post("/account/token/"))


def _page_submit(client: Client, competition, **headers):
    data = {"file": factories.upload(factories.predictions_csv())}
    return client.post(f"/c/{competition.slug}/submit/", data, **headers)


def _api_submit(api, user, competition):
    data = {"file": factories.upload(factories.predictions_csv())}
    return api(user).post(f"/api/v1/competitions/{competition.slug}/submissions/", data)


def test_a_user_throttled_by_the_api_is_refused_by_the_submit_page(api, competition, participant):
    assert [_api_submit(api, participant, competition).status_code for _ in range(2)] == [202, 202]
    assert _api_submit(api, participant, competition).status_code == 429
    client = Client()
    client.force_login(participant)

    assert_throttled_page(_page_submit(client, competition))
    assert Submission.objects.filter(submitter=participant).count() == 2


def test_a_user_throttled_by_the_submit_page_is_refused_by_the_api(api, competition, participant):
    client = Client()
    client.force_login(participant)
    assert [_page_submit(client, competition).status_code for _ in range(2)] == [302, 302]

    refused = _api_submit(api, participant, competition)

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert refused.json()["retry_after_s"] == int(refused["Retry-After"])
    assert Submission.objects.filter(submitter=participant).count() == 2


def test_the_submit_pages_script_gets_the_refusal_as_json(competition, participant):
    client = Client()
    client.force_login(participant)
    for _ in range(2):
        _page_submit(client, competition, **JSON)

    response = _page_submit(client, competition, **JSON)

    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "throttled"
    assert body["retry_after_s"] == int(response["Retry-After"])
    assert body["detail"].startswith("Too many attempts. Wait ")


def test_one_users_count_does_not_throttle_another(
    api, competition, participant, other_participant
):
    for _ in range(3):
        _api_submit(api, participant, competition)
    assert _api_submit(api, other_participant, competition).status_code == 202


def test_a_lowered_rate_still_answers_with_retry_after(api, monkeypatch, competition, participant):
    for _ in range(2):
        _api_submit(api, participant, competition)
    monkeypatch.setitem(ScopeThrottle.THROTTLE_RATES, "submissions", "1/minute")

    refused = _api_submit(api, participant, competition)

    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (1, "1 second"),
        (45, "45 seconds"),
        (60, "1 minute"),
        (61, "2 minutes"),
        (3600, "1 hour"),
        (3700, "1 hour 2 minutes"),
        (7200, "2 hours"),
    ],
)
def test_the_wait_is_said_in_words(seconds, words):
    assert wait_in_words(seconds) == words


def test_a_forged_forwarded_for_header_escapes_nothing(participant):
    client = Client()
    for n in range(3):
        assert _wrong_login(client, forwarded=f"10.0.0.{n}").status_code == 200
    assert_throttled_page(_wrong_login(client, forwarded="10.9.9.9"))


def test_behind_one_proxy_clients_are_counted_by_the_address_it_appended(monkeypatch, participant):
    monkeypatch.setattr(api_settings, "NUM_PROXIES", 1)
    client = Client()
    for n in range(3):
        # What nginx passes on: the client's own header, then the address nginx saw.
        forwarded = f"10.0.0.{n}, 203.0.113.7"
        assert _wrong_login(client, forwarded=forwarded).status_code == 200

    assert_throttled_page(_wrong_login(client, forwarded="1.1.1.1, 203.0.113.7"))
    assert _wrong_login(client, forwarded="203.0.113.7, 198.51.100.2").status_code == 200
