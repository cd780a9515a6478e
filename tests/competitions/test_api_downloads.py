"""Downloads answer Range and ETag (competitions/downloads.py): every download view, its
stored or computed SHA-256 as ETag, 304, 206, 416 and If-Range; and whatever the Accept
header, the file (or a JSON refusal)."""

from __future__ import annotations

import hashlib

import pytest
from rest_framework.test import APIClient

from competitions.downloads import Unsatisfiable, parse_range
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from tests import factories
from tests.conftest import persona_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=90-1000", (90, 99)),
        ("bytes=99-99", (99, 99)),
        ("items=0-9", None),
        ("bytes=0-1,5-9", None),
    ],
)
def test_a_range_header_names_the_first_and_last_byte(header, expected):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=9-5", "bytes=-0", "bytes=-", "bytes=a-b"])
def test_a_range_outside_the_file_or_malformed_is_unsatisfiable(header):
    with pytest.raises(Unsatisfiable):
        parse_range(header, 100)


def test_an_empty_file_satisfies_no_range():
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=-5", 0)


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def downloads(competition, submission, organizer, participant):
    """(url, user, expected bytes or None for a generated zip, stored sha256 or "")."""
    slug = competition.slug
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    sample = competition.task.files.get()
    return [
        (f"/api/v1/competitions/{slug}/files/{sample.name}", None, sample.file.read(), ""),
        (f"/api/v1/competitions/{slug}/ground-truth/", organizer, None, ""),
        (
            f"/api/v1/submissions/{submission.pk}/file/",
            participant,
            factories.perfect_predictions(),
            submission.sha256,
        ),
        (f"/api/v1/competitions/{slug}/export/", organizer, None, ""),
        (f"/c/{slug}/organize/export/", organizer, None, ""),
        (f"/api/v1/submissions/{submission.pk}/bundle/", participant, None, ""),
    ]


def _client(user):
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client


def test_every_download_has_an_etag_of_its_sha256_and_accepts_ranges(downloads):
    for url, user, expected, stored in downloads:
        response = _client(user).get(url)
        assert response.status_code == 200, url
        body = _body(response)
        if expected is not None:
            assert body == expected
        assert response["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"', url
        if stored:
            assert response["ETag"] == f'"{stored}"'
        assert response["Accept-Ranges"] == "bytes"
        assert int(response["Content-Length"]) == len(body)
        assert response["Content-Disposition"].startswith("attachment")


def test_every_download_answers_a_range_with_206_and_exactly_those_bytes(downloads):
    for url, user, _expected, _stored in downloads:
        client = _client(user)
        whole = client.get(url)
        body, etag = _body(whole), whole["ETag"]
        # Resuming: the rest of the file, from byte 7, for the same ETag.
        response = client.get(url, HTTP_RANGE="bytes=7-", HTTP_IF_RANGE=etag)
        if url.endswith(("export/", "bundle/")) and response.status_code == 200:
            # A zip made anew at each request whose bytes changed: the whole new file.
            assert response["ETag"] != etag
            continue
        assert response.status_code == 206, url
        assert _body(response) == body[7:]
        assert response["Content-Range"] == f"bytes 7-{len(body) - 1}/{len(body)}"
        assert response["Content-Length"] == str(len(body) - 7)
        assert response["ETag"] == etag


def test_every_download_is_sent_whatever_its_accept_header(downloads):
    for url, user, _expected, _stored in downloads:
        for accept in ("application/octet-stream", "application/zip", "text/csv"):
            response = _client(user).get(url, HTTP_ACCEPT=accept)
            assert response.status_code == 200, (url, accept)


def test_a_refused_download_is_json_whatever_its_accept_header(api, competition, outsider):
    url = f"/api/v1/competitions/{competition.slug}/ground-truth/"
    response = api(outsider).get(url, HTTP_ACCEPT="application/octet-stream")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_stored_file_answers_ranges_and_conditional_gets(api, competition):
    url = f"/api/v1/competitions/{competition.slug}/files/sample_submission.csv"
    client = api(None)
    first = client.get(url)
    body, etag = _body(first), first["ETag"]

    head = client.head(url)
    assert (head.status_code, head["ETag"], head["Content-Length"]) == (200, etag, str(len(body)))
    assert head["Accept-Ranges"] == "bytes"

    middle = client.get(url, HTTP_RANGE="bytes=2-5")
    assert (middle.status_code, _body(middle)) == (206, body[2:6])
    assert middle["Content-Range"] == f"bytes 2-5/{len(body)}"
    tail = client.get(url, HTTP_RANGE="bytes=-3")
    assert (tail.status_code, _body(tail)) == (206, body[-3:])

    for match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        unchanged = client.get(url, HTTP_IF_NONE_MATCH=match)
        assert unchanged.status_code == 304, match
        assert unchanged["ETag"] == etag
        assert unchanged.content == b""
    changed = client.get(url, HTTP_IF_NONE_MATCH='"something-else"')
    assert (changed.status_code, _body(changed)) == (200, body)

    stale = client.get(url, HTTP_RANGE="bytes=2-5", HTTP_IF_RANGE='"an-older-version"')
    assert (stale.status_code, _body(stale)) == (200, body)

    outside = client.get(url, HTTP_RANGE=f"bytes={len(body)}-")
    assert outside.status_code == 416
    assert outside["Content-Range"] == f"bytes */{len(body)}"
    assert outside.json()["code"] == "range_not_satisfiable"


def test_a_download_a_persona_may_not_see_stays_hidden_whatever_the_headers(
    request, api, competition, submission
):
    for persona in ("outsider", "other_participant", "other_organizer"):
        user = persona_user(request, persona)
        for url in (
            f"/api/v1/submissions/{submission.pk}/file/",
            f"/api/v1/competitions/{competition.slug}/ground-truth/",
        ):
            for headers in ({"HTTP_RANGE": "bytes=0-3"}, {"HTTP_IF_NONE_MATCH": "*"}):
                response = api(user).get(url, **headers)
                assert response.status_code == 404, (persona, url, headers)
