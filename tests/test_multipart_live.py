"""Malformed multipart submissions against a real gunicorn (config/gunicorn.py), through raw
sockets: two `file` parts, and a body shorter than its Content-Length, are answered 400 at
once (or, for a client that stalls, after HELDOUT_BODY_STALL_TIMEOUT_S) - never a worker
held for half a minute and then a 500. Nothing is stored."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
from rest_framework.authtoken.models import Token

from competitions.models import Submission
from tests import factories
from tests.web_process import web_process

pytestmark = pytest.mark.django_db(transaction=True)

BOUNDARY = "heldoutboundary"
STALL_S = 1.0


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("HELDOUT_BODY_STALL_TIMEOUT_S", str(STALL_S))
    with web_process(tmp_path / "gunicorn.log") as base:
        yield base


def _part(name: str, content: bytes, filename: str = "predictions.csv") -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
        f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'
    )
    return head.encode() + content + b"\r\n"


def _body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _post(server: str, user, body: bytes, length: int, *, close_write: bool = False):
    """POST `body` announcing `length` bytes; returns (status, json body, seconds taken)."""
    token, _ = Token.objects.get_or_create(user=user)
    parts = urlsplit(server)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        head = [
            "POST /api/v1/competitions/tiny/submissions/ HTTP/1.1",
            f"Host: {parts.netloc}",
            f"Authorization: Token {token.key}",
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
            f"Content-Length: {length}",
            "Connection: close",
        ]
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        # Sent from a thread while this one reads: the server may answer (and close) before
        # it has read everything.
        sender = threading.Thread(target=_send, args=(sock, request, close_write))
        sender.start()
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
        sender.join()
    elapsed = time.monotonic() - started
    head_bytes, _, payload = answer.partition(b"\r\n\r\n")
    status = int(head_bytes.split(b" ", 2)[1])
    return status, json.loads(payload or b"{}"), elapsed


def _send(sock: socket.socket, request: bytes, close_write: bool) -> None:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(request)
        if close_write:
            sock.shutdown(socket.SHUT_WR)


def test_one_file_part_is_accepted_through_the_guard(server, competition, participant):
    body = _body(_part("file", factories.perfect_predictions()))
    status, data, _ = _post(server, participant, body, len(body))
    assert status == 202, data
    assert Submission.objects.count() == 1


def test_two_file_parts_are_answered_400_at_once(server, competition, participant):
    # The second part is large: refused at its headers, its bytes are never stored.
    second = b"id,label\n" + b"x,0.5\n" * 2_000_000
    body = _body(_part("file", factories.perfect_predictions()), _part("file", second))
    status, data, elapsed = _post(server, participant, body, len(body))
    assert status == 400
    assert data["detail"] == 'Send one file: the request has two "file" parts.'
    assert elapsed < 5
    assert not Submission.objects.exists()


def test_a_body_that_ends_before_its_content_length_is_answered_400_at_once(
    server, competition, participant
):
    body = _body(_part("file", factories.perfect_predictions()))
    status, data, elapsed = _post(server, participant, body, len(body) + 1000, close_write=True)
    assert status == 400
    assert data["code"] == "upload_malformed"
    assert f"ended after {len(body)} of the {len(body) + 1000} bytes" in data["detail"]
    assert elapsed < 2
    assert not Submission.objects.exists()


def test_a_body_that_stalls_before_its_content_length_is_answered_400_after_the_stall_limit(
    server, competition, participant
):
    body = _body(_part("file", factories.perfect_predictions()))
    status, data, elapsed = _post(server, participant, body, len(body) + 1000)
    assert status == 400
    assert data["code"] == "upload_malformed"
    assert STALL_S <= elapsed < STALL_S + 5
    assert not Submission.objects.exists()
