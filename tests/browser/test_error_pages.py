"""The error pages a person meets (issue 14): 404, 403 and 500 in the site's style, with
its header, stylesheet and favicon, also when DEBUG is on (as in the demo); JSON under
/api/ whatever DEBUG says."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _in_the_site_style(page) -> None:
    expect(page.locator("header.site-header .brand")).to_have_text("Heldout")
    assert page.locator("link[rel=stylesheet][href*='heldout']").count() == 1
    assert page.locator("link[rel=icon]").count() == 1
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "system-ui" in font, font
    body = page.locator("body").inner_text()
    assert "URLconf" not in body
    assert "Traceback" not in body
    assert "DEBUG" not in body


@pytest.mark.parametrize("debug", [False, True])
def test_a_missing_page_is_the_sites_404_even_with_debug_on(new_page, settings, debug):
    settings.DEBUG = debug
    factories.make_competition()
    for width in (1280, 390):
        page = new_page(width=width)
        response = page.goto("/no/such/page/")
        assert response.status == 404
        expect(page.get_by_role("heading", name="We can't find that page")).to_be_visible()
        _in_the_site_style(page)
        # A view's own 404 (a competition nobody can see) too.
        response = page.goto("/c/no-such-competition/")
        assert response.status == 404
        expect(page.get_by_role("heading", name="We can't find that page")).to_be_visible()
        _in_the_site_style(page)
        screenshot(page, f"60-not-found-{width}")
    # A slash-less address still gets its slash first.
    response = page.goto("/c/tiny")
    assert response.status == 200
    assert page.url.endswith("/c/tiny/")


@pytest.mark.parametrize("debug", [False, True])
def test_a_missing_api_endpoint_answers_json_even_with_debug_on(new_page, settings, debug):
    settings.DEBUG = debug
    page = new_page()
    response = page.request.get("/api/v1/no-such-endpoint/")
    assert response.status == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == "not_found"
    response = page.request.get("/api/v1/competitions/no-such-one/")
    assert response.status == 404
    assert response.json()["code"] == "not_found"


def test_a_forbidden_page_is_in_the_site_style(new_page, organizer, outsider):
    competition = factories.make_competition(organizers=[organizer])
    for width in (1280, 390):
        page = new_page(width=width)
        log_in(page, "charlie", "pw-charlie")
        response = page.goto(f"/c/{competition.slug}/organize/")
        assert response.status == 403
        expect(page.get_by_role("heading", name="You can't do that here")).to_be_visible()
        _in_the_site_style(page)
        screenshot(page, f"61-forbidden-{width}")


def test_a_server_error_is_the_sites_500_page_and_json_under_the_api(new_page, settings):
    settings.ROOT_URLCONF = "tests.browser.boom_urls"
    for width in (1280, 390):
        page = new_page(width=width)
        response = page.goto("/boom/")
        assert response.status == 500
        expect(page.get_by_role("heading", name="Something went wrong on our side")).to_be_visible()
        _in_the_site_style(page)
        screenshot(page, f"62-server-error-{width}")
    response = page.request.get("/api/v1/boom/")
    assert response.status == 500
    assert response.json()["code"] == "server_error"
