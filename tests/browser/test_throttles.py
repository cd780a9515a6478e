"""The forms' throttles in a real browser: the pages count in the API's histories and say, in
a sentence, how long to wait (competitions/throttles.py)."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from competitions.models import Submission
from competitions.services.teams import competition_join
from competitions.throttles import ScopeThrottle
from tests import factories
from tests.browser.conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def rates(monkeypatch):
    cache.clear()  # the database cache outlives transactions: no count from an earlier test
    monkeypatch.setitem(ScopeThrottle.THROTTLE_RATES, "auth", "20/minute")
    monkeypatch.setitem(ScopeThrottle.THROTTLE_RATES, "submissions", "2/minute")


def test_the_21st_wrong_password_is_told_to_wait(new_page, participant):
    page = new_page()
    page.goto("/accounts/login/")
    for _ in range(20):
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("wrong")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.get_by_role("button", name="Log in").click()
        assert answer.value.status == 200
        expect(page.get_by_role("alert")).to_contain_text("didn't match")

    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("pw-alice")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Log in").click()

    assert answer.value.status == 429
    assert 1 <= int(answer.value.headers["retry-after"]) <= 60
    expect(page.get_by_role("heading", name="Too many attempts")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text(
        re.compile(r"Too many attempts\. Wait \d+ seconds?, then try again\.")
    )
    screenshot(page, "throttled-login")


def test_the_submit_page_refuses_a_user_the_api_throttled_and_says_so(
    new_page, api, organizer, participant
):
    competition = factories.make_competition(organizers=[organizer])
    competition_join(competition=competition, user=participant, accept_rules=True)
    Token.objects.get_or_create(user=participant)
    for _ in range(2):
        data = {"file": factories.upload(factories.predictions_csv())}
        response = api(participant).post(
            f"/api/v1/competitions/{competition.slug}/submissions/", data
        )
        assert response.status_code == 202
    page = new_page()
    log_in(page, "alice", "pw-alice")
    page.goto(f"/c/{competition.slug}/submit/")

    page.get_by_label("Predictions file").set_input_files(
        {"name": "p.csv", "mimeType": "text/csv", "buffer": factories.predictions_csv()}
    )
    page.get_by_role("button", name="Upload and score").click()

    expect(page.locator("#submit-alert")).to_contain_text("Too many attempts. Wait ")
    assert Submission.objects.count() == 2
    screenshot(page, "throttled-submit")
