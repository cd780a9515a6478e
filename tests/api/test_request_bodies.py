"""Malformed request bodies are refused with a 400 in the error format, never used in part
or answered 500 (issue 9): two `file` parts in one submission, a body shorter than its
Content-Length."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest
from rest_framework.authtoken.models import Token

from competitions.models import Submission
from tests import factories
from tests.web_process import web_process


@pytest.mark.django_db
def test_a_submission_with_two_file_parts_is_refused_and_neither_is_used(
    api, competition, participant
):
    response = api(participant).post(
        f"/api/v1/competitions/{competition.slug}/submissions/",
        {
            "file": [
                factories.upload(factories.perfect_predictions(), "first.csv"),
                factories.upload(factories.predictions_csv(), "second.csv"),
            ]
        },
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert "one file" in str(response.json()["file"])
    assert not Submission.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_body_shorter_than_its_content_length_is_answered_400_at_once(
    competition, participant, tmp_path
):
    token, _ = Token.objects.get_or_create(user=participant)
    boundary = "XyZ"
    part = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="p.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode() + factories.perfect_predictions()[:20]
    with web_process(tmp_path / "gunicorn.log") as base:
        parts = urlsplit(base)
        sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
        head = [
            f"POST /api/v1/competitions/{competition.slug}/submissions/ HTTP/1.1",
            f"Host: {parts.netloc}",
            f"Authorization: Token {token.key}",
            f"Content-Type: multipart/form-data; boundary={boundary}",
            f"Content-Length: {len(part) + 5000}",
            "Connection: close",
        ]
        started = time.monotonic()
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + part)
        sock.shutdown(socket.SHUT_WR)  # the client is done: the body stays short
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        sock.close()
        elapsed = time.monotonic() - started
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"400", answer[:2000]
    assert b'"code":' in rest
    assert elapsed < 5
    assert not Submission.objects.exists()
