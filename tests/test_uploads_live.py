"""Resumable uploads against a real gunicorn, configured as in production (config/gunicorn.py):
a connection cut at 50 % resumes from the bytes the server kept, and slow uploaders don't
stall the site (issue 13: a 4 ms page took 8.4 s with two slow uploads on sync workers).

HTTP through raw sockets where the test needs to cut or throttle a request, `requests`
elsewhere; the submission made from the upload is scored in this process.
"""

from __future__ import annotations

import base64
import hashlib
import random
import socket
import statistics
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from rest_framework.authtoken.models import Token

from competitions.models import Score, Submission
from judging.services import submission_score
from tests import factories
from tests.web_process import web_process

pytestmark = pytest.mark.django_db(transaction=True)

TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def server(tmp_path):
    with web_process(tmp_path / "gunicorn.log") as base:
        yield base


def _headers(user) -> dict[str, str]:
    token, _ = Token.objects.get_or_create(user=user)
    return {"Authorization": f"Token {token.key}", **TUS}


def _create(
    server: str, headers: dict, length: int, filename: str = "predictions.csv", verify=True
) -> str:
    metadata = "filename " + base64.b64encode(filename.encode()).decode()
    metadata += ",competition " + base64.b64encode(b"tiny").decode()
    response = requests.post(
        f"{server}/api/v1/uploads/",
        headers={**headers, "Upload-Length": str(length), "Upload-Metadata": metadata},
        timeout=10,
        verify=verify,
    )
    assert response.status_code == 201, response.text
    return response.headers["Location"]


def _open_patch(url: str, headers: dict, offset: int, length: int) -> socket.socket:
    """A PATCH whose headers are sent, announcing `length` body bytes; the caller sends them."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    sock.sendall(_request_head("PATCH", url, headers, offset=offset, length=length, close=True))
    return sock


def _request_head(
    method: str, url: str, headers: dict, *, offset: int = 0, length: int = 0, close: bool
) -> bytes:
    parts = urlsplit(url)
    lines = [f"{method} {parts.path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if method == "PATCH":
        lines += [
            "Content-Type: application/offset+octet-stream",
            f"Upload-Offset: {offset}",
            f"Content-Length: {length}",
        ]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status_line(sock: socket.socket) -> str:
    received = b""
    while b"\r\n" not in received:
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received.split(b"\r\n", 1)[0].decode()


def _offset_once_settled(url: str, headers: dict, expected: int, timeout: float = 10) -> int:
    """HEAD until the server has recorded `expected` bytes (it notices a cut connection a
    moment after the client goes)."""
    deadline = time.monotonic() + timeout
    offset = -1
    while time.monotonic() < deadline:
        offset = int(requests.head(url, headers=headers, timeout=10).headers["Upload-Offset"])
        if offset == expected:
            return offset
        time.sleep(0.1)
    return offset


def _submit_upload(server: str, url: str, headers: dict, content: bytes) -> dict:
    """Submit the finished upload at `url` (accepted: 202, with the content's sha256)."""
    created = requests.post(
        f"{server}/api/v1/competitions/tiny/submissions/",
        json={"upload": url},
        headers=headers,
        timeout=10,
    )
    assert created.status_code == 202, created.text
    assert created.json()["sha256"] == hashlib.sha256(content).hexdigest()
    return created.json()


def test_an_upload_cut_at_half_resumes_from_the_server_offset_and_is_scored(
    server, competition, participant, settings
):
    headers = _headers(participant)
    content = factories.perfect_predictions()
    half = len(content) // 2
    url = _create(server, headers, len(content))

    # The client sends half the bytes of a PATCH announcing all of them, then goes away.
    cut = _open_patch(url, headers, 0, len(content))
    cut.sendall(content[:half])
    cut.close()

    offset = _offset_once_settled(url, headers, half)
    assert offset == half
    resumed = requests.patch(
        url,
        data=content[offset:],
        headers={
            **headers,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
        timeout=10,
    )
    assert resumed.status_code == 204, resumed.text
    assert resumed.headers["Upload-Offset"] == str(len(content))

    created = _submit_upload(server, url, headers, content)

    settings.HELDOUT_SCORER = "in-process"
    submission_id = created["id"]
    assert submission_score(submission_id=submission_id) is True
    submission = Submission.objects.get(pk=submission_id)
    assert submission.status == Submission.Status.SCORED
    assert submission.file.read() == content
    roc_auc = Score.objects.get(submission=submission, split="public", metric="roc_auc")
    assert roc_auc.value == 1.0


def _slow_patch(url: str, headers: dict, *, rate: int, seconds: float, results: list) -> None:
    """Send rate*seconds bytes at `rate` bytes/s, a tenth of a second's worth at a time."""
    total = int(rate * seconds)
    piece = rate // 10
    sock = _open_patch(url, headers, 0, total)
    try:
        for _ in range(total // piece):
            sock.sendall(b"s" * piece)
            time.sleep(0.1)
        results.append(_status_line(sock))
    finally:
        sock.close()


def test_four_slow_uploaders_leave_a_page_answering_within_100_ms(server, competition, participant):
    headers = _headers(participant)
    rate, seconds = 50_000, 5.0
    urls = [_create(server, headers, int(rate * seconds)) for _ in range(4)]
    results: list[str] = []
    uploaders = [
        threading.Thread(
            target=_slow_patch,
            args=(url, headers),
            kwargs={"rate": rate, "seconds": seconds, "results": results},
        )
        for url in urls
    ]
    for thread in uploaders:
        thread.start()
    time.sleep(0.5)  # every uploader is mid-body

    timings: list[float] = []
    statuses: list[int] = []
    page = requests.Session()
    while any(thread.is_alive() for thread in uploaders) and len(timings) < 40:
        started = time.perf_counter()
        response = page.get(f"{server}/", timeout=10)
        timings.append(time.perf_counter() - started)
        statuses.append(response.status_code)
        time.sleep(0.1)
    for thread in uploaders:
        thread.join(timeout=30)

    assert set(statuses) == {200}
    assert max(timings) < 1.0, timings
    assert statistics.median(timings) < 0.1, timings
    assert len(timings) >= 10, "the uploads ended before the page was measured"
    assert results == ["HTTP/1.1 204 No Content"] * 4
    for url in urls:
        head = requests.head(url, headers=headers, timeout=10)
        assert head.headers["Upload-Offset"] == str(int(rate * seconds))


def _bodiless_answers(sock: socket.socket, count: int) -> list[tuple[str, dict[str, str]]]:
    """The status lines and headers of `count` answers without a body (204, HEAD's)."""
    received = b""
    while received.count(b"\r\n\r\n") < count:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection after {received!r}"
        received += chunk
    answers = []
    for block in received.split(b"\r\n\r\n")[:count]:
        status, *lines = block.decode().split("\r\n")
        answers.append(
            (status, {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)})
        )
    return answers


def test_pieces_on_one_kept_alive_connection_leave_it_in_step_with_pipelined_requests(
    server, competition, participant
):
    """A PATCH body is read past gunicorn's own reader (competitions.uploads.SocketBody):
    the bytes gunicorn read ahead with the headers count, and a request sent right behind
    the body is answered next, on the same connection."""
    headers = _headers(participant)
    content = random.Random(13).randbytes(900_000)
    url = _create(server, headers, len(content))
    head = _request_head("HEAD", url, headers, close=False)
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        offset = 0
        # Small enough to arrive whole with its headers and the HEAD; large, in many reads.
        for piece in (content[:100], content[100:800_000], content[800_000:]):
            patch = _request_head(
                "PATCH", url, headers, offset=offset, length=len(piece), close=False
            )
            sock.sendall(patch + piece + head)
            (patched, patch_headers), (headed, head_headers) = _bodiless_answers(sock, 2)
            offset += len(piece)
            assert patched == "HTTP/1.1 204 No Content"
            assert patch_headers["upload-offset"] == str(offset)
            assert headed == "HTTP/1.1 200 OK"
            assert head_headers["upload-offset"] == str(offset)

    got = requests.get(url, headers=headers, timeout=10).json()
    assert got["complete"] is True
    assert got["sha256"] == hashlib.sha256(content).hexdigest()


def test_the_client_in_docs_uploads_md_uploads_a_file_that_can_be_submitted(
    server, competition, participant, tmp_path
):
    text = (Path(__file__).resolve().parent.parent / "docs" / "uploads.md").read_text()
    code = text.split("## A minimal client", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "docs/uploads.md", "exec"), namespace)
    content = factories.perfect_predictions()
    path = tmp_path / "predictions.csv"
    path.write_bytes(content)
    headers = _headers(participant)

    url = namespace["upload"](server, headers["Authorization"].split()[1], str(path), "tiny")

    _submit_upload(server, url, headers, content)
