"""The submit page's resumable upload (static/js/submit.js, tus) in a real browser: it
survives a failed request, and after a reload it goes on from the bytes the server has."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from competitions.models import Submission
from competitions.services.teams import competition_join
from tests import factories
from tests.browser.conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCORING_TIMEOUT_MS = 60_000


def _file(content: bytes) -> dict:
    return {"name": "predictions.csv", "mimeType": "text/csv", "buffer": content}


def _patches(page) -> list[str]:
    """Records the Upload-Offset of every PATCH the page sends."""
    offsets: list[str] = []
    page.on(
        "request",
        lambda request: (
            offsets.append(request.headers.get("upload-offset", "?"))
            if request.method == "PATCH"
            else None
        ),
    )
    return offsets


def test_the_submit_page_retries_a_failed_piece_and_the_submission_is_scored(
    new_page, worker, organizer, participant
):
    competition = factories.make_competition(organizers=[organizer])
    competition_join(competition=competition, user=participant, accept_rules=True)
    page = new_page()
    log_in(page, "alice", "pw-alice")
    offsets = _patches(page)
    failed: list[str] = []

    def fail_first_patch(route):
        if route.request.method == "PATCH" and not failed:
            failed.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/v1/uploads/**", fail_first_patch)
    page.goto(f"/c/{competition.slug}/submit/")
    content = factories.perfect_predictions()
    page.get_by_label("Predictions file").set_input_files(_file(content))
    page.get_by_role("button", name="Upload and score").click()

    expect(page.locator("#status-text")).to_have_text("Scored", timeout=SCORING_TIMEOUT_MS)
    expect(page.locator("#scores")).to_contain_text("1.00000")
    screenshot(page, "11-submit-resumable-scored")
    assert failed, "no PATCH went through the failing route"
    assert offsets == ["0", "0"], offsets  # the failed piece, then its retry
    submission = Submission.objects.get()
    assert submission.sha256 == hashlib.sha256(content).hexdigest()
    assert page.evaluate("Object.keys(localStorage).length") == 0


def test_after_a_reload_the_page_resumes_the_upload_from_the_servers_offset(
    new_page, worker, organizer, participant
):
    competition = factories.make_competition(organizers=[organizer])
    competition_join(competition=competition, user=participant, accept_rules=True)
    content = factories.perfect_predictions()
    half = len(content) // 2
    # What an earlier visit left: an upload with the first half on the server.
    api: Any = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=participant).key}")
    tus = {"HTTP_TUS_RESUMABLE": "1.0.0"}
    name = base64.b64encode(b"predictions.csv").decode()
    url = api.post(
        "/api/v1/uploads/",
        HTTP_UPLOAD_LENGTH=str(len(content)),
        HTTP_UPLOAD_METADATA=f"filename {name}",
        **tus,
    )["Location"]
    path = url.split("testserver", 1)[1]
    sent = api.generic(
        "PATCH",
        path,
        content[:half],
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET="0",
        **tus,
    )
    assert sent.status_code == 204

    page = new_page()
    log_in(page, "alice", "pw-alice")
    offsets = _patches(page)
    page.goto(f"/c/{competition.slug}/submit/")
    page.get_by_label("Predictions file").set_input_files(_file(content))
    # The key the script derives from the chosen file, pointing at the half-done upload.
    page.evaluate(
        """(path) => {
            const form = document.getElementById("submit-form");
            const file = form.querySelector("input[type=file]").files[0];
            const key = ["heldout-upload", form.dataset.competition, file.name, file.size,
                         file.lastModified].join(":");
            localStorage.setItem(key, location.origin + path);
        }""",
        path,
    )
    page.get_by_role("button", name="Upload and score").click()

    expect(page.locator("#status-text")).to_have_text("Scored", timeout=SCORING_TIMEOUT_MS)
    assert offsets == [str(half)], offsets
    assert Submission.objects.get().sha256 == hashlib.sha256(content).hexdigest()


def test_on_a_fast_link_the_submit_page_sends_pieces_larger_than_the_first(
    new_page, organizer, participant
):
    competition = factories.make_competition(organizers=[organizer])
    competition_join(competition=competition, user=participant, accept_rules=True)
    page = new_page()
    log_in(page, "alice", "pw-alice")
    offsets = _patches(page)
    page.goto(f"/c/{competition.slug}/submit/")
    content = factories.perfect_predictions() + b"\n" * (20 * 2**20)
    page.get_by_label("Predictions file").set_input_files(_file(content))
    page.get_by_role("button", name="Upload and score").click()

    for _ in range(300):  # the upload is done once the form made the submission
        if Submission.objects.exists():
            break
        page.wait_for_timeout(200)
    assert Submission.objects.get().sha256 == hashlib.sha256(content).hexdigest()
    assert offsets[:2] == ["0", str(5 * 2**20)], offsets  # the first piece: 5 MiB
    # 5 MiB pieces would take five requests; on loopback a piece is sized to ~2 s of it.
    assert len(offsets) < 5, offsets
