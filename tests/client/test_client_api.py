"""heldout.Client, the Python API: retries honouring Retry-After (against httpx's mock
transport: a real throttle that answers 429 with a short Retry-After is not configured in
tests), and resumable uploads that go on from the server's offset (against a live site)."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import socket
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from django.utils import timezone
from heldout import Client, HeldoutError, transfer
from heldout.config import resolve, save_profile
from heldout.transfer import TUS, send_from

from tests import factories
from tests.client.conftest import token_of


def _scripted(*answers: httpx.Response) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    return httpx.MockTransport(handler), seen


def test_a_429_is_retried_after_its_retry_after_and_the_token_is_sent():
    transport, seen = _scripted(
        httpx.Response(429, headers={"Retry-After": "1"}, json={"code": "throttled"}),
        httpx.Response(503, headers={"Retry-After": "0"}),
        httpx.Response(
            200, json={"count": 1, "next": None, "results": [{"slug": "tiny", "title": "Tiny"}]}
        ),
    )
    client = Client("http://heldout.test", "secret", transport=transport)
    started = time.monotonic()
    assert [c.slug for c in client.competitions()] == ["tiny"]
    assert time.monotonic() - started >= 1.0
    assert len(seen) == 3
    assert {r.headers["Authorization"] for r in seen} == {"Token secret"}
    assert seen[0].url == "http://heldout.test/api/v1/competitions/"


def test_a_429_that_says_tomorrow_is_an_error_at_once():
    transport, seen = _scripted(
        httpx.Response(
            429,
            headers={"Retry-After": "40000"},
            json={"detail": "Daily limit reached.", "code": "quota_exceeded"},
        )
    )
    client = Client("http://heldout.test", "secret", transport=transport)
    with pytest.raises(HeldoutError) as refused:
        client.submit_upload("tiny", "http://heldout.test/api/v1/uploads/x/")
    assert (refused.value.status, refused.value.code) == (429, "quota_exceeded")
    assert refused.value.retry_after == 40000
    assert len(seen) == 1


def test_a_post_is_not_sent_twice_after_a_broken_connection():
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadError("connection reset", request=request)

    transport = httpx.MockTransport(handler)
    client = Client("http://heldout.test", "secret", transport=transport, attempts=3)
    with pytest.raises(HeldoutError, match="Cannot reach"):
        client.join("tiny")
    assert len(calls) == 1
    calls.clear()
    with pytest.raises(HeldoutError):
        client.competitions()
    assert len(calls) == 3  # a GET is retried


def test_a_piece_answered_503_is_sent_again_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "BLOCK", 1000)  # the piece is read from the file in blocks
    content = bytes(range(256)) * 40
    path = tmp_path / "predictions.csv"
    path.write_bytes(content)
    done = {**TUS, "Upload-Offset": str(len(content))}
    transport, seen = _scripted(
        httpx.Response(503, headers={"Retry-After": "0"}), httpx.Response(204, headers=done)
    )
    client = Client("http://heldout.test", "secret", transport=transport)
    url = "http://heldout.test/api/v1/uploads/x/"

    assert send_from(client.http, url, path, size=len(content), offset=0, progress=None) == len(
        content
    )
    assert [r.content for r in seen] == [content, content]
    assert {r.headers["Content-Length"] for r in seen} == {str(len(content))}


def test_pieces_stay_below_a_size_the_server_refused_with_413(tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "CHUNK", 1000)
    content = bytes(range(256)) * 200
    path = tmp_path / "image.tar"
    path.write_bytes(content)
    received = bytearray()
    refused: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            return httpx.Response(200, headers={**TUS, "Upload-Offset": str(len(received))})
        if len(request.content) > 5000:  # the server's largest request body
            refused.append(len(request.content))
            return httpx.Response(413, json={"detail": "Too large.", "code": "file_too_large"})
        received.extend(request.content)
        return httpx.Response(204, headers={**TUS, "Upload-Offset": str(len(received))})

    client = Client("http://heldout.test", "secret", transport=httpx.MockTransport(handler))
    url = "http://heldout.test/api/v1/uploads/x/"

    assert send_from(client.http, url, path, size=len(content), offset=0, progress=None) == len(
        content
    )
    assert bytes(received) == content
    assert refused == [16000, 8000]  # then never above 4000 again


@pytest.mark.django_db(transaction=True)
def test_pieces_grow_with_a_fast_link_from_the_first_to_the_largest(
    site, competition, participant, tmp_path, monkeypatch
):
    monkeypatch.setattr(transfer, "CHUNK", 64 * 1024)
    monkeypatch.setattr(transfer, "PIECE_MAX", 1024 * 1024)
    content = factories.perfect_predictions() + b"\n" * 4_000_000
    path = tmp_path / "predictions.csv"
    path.write_bytes(content)
    offsets: list[int] = [0]
    client = Client(site, token_of(participant))

    upload = client.upload(path, competition="tiny", progress=lambda d, t: offsets.append(d))

    pieces = [b - a for a, b in itertools.pairwise(offsets)]
    assert upload.offset == len(content)
    assert pieces[0] == 64 * 1024
    assert all(b <= 4 * a for a, b in itertools.pairwise(pieces)), pieces
    assert max(pieces) == 1024 * 1024  # loopback sends a MiB well within PIECE_SECONDS
    got = client.http.json("GET", upload.url, headers=TUS)
    assert got["sha256"] == hashlib.sha256(content).hexdigest()


@pytest.mark.django_db(transaction=True)
def test_an_upload_resumes_from_the_bytes_the_server_already_has(
    site, competition, participant, tmp_path
):
    client = Client(site, token_of(participant))
    content = factories.perfect_predictions()
    created = client.http.request(
        "POST", "uploads/", headers={**TUS, "Upload-Length": str(len(content))}
    )
    url = created.headers["Location"]
    half = len(content) // 2
    client.http.request(
        "PATCH",
        url,
        content=content[:half],
        headers={
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )

    path = tmp_path / "predictions.csv"
    path.write_bytes(content)
    # Started from 0, the client is told 409 (the server has `half`), asks, and goes on.
    offset = send_from(client.http, url, path, size=len(content), offset=0, progress=None)
    assert offset == len(content)
    submission = client.submit_upload("tiny", url, description="resumed")
    assert submission.sha256 == hashlib.sha256(content).hexdigest()
    assert client.submission(submission.id).description == "resumed"


class CuttingProxy:
    """A TCP proxy to the site that drops the connection carrying the client's bytes once,
    after `cut_after` bytes from the client: an upload's connection breaking mid-PATCH."""

    def __init__(self, upstream: str, cut_after: int) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.cut_after = cut_after
        self.sent = 0
        self.cut = False
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(16384):
                if from_client:
                    with self.lock:
                        self.sent += len(data)
                        cut = not self.cut and self.sent > self.cut_after
                        self.cut = self.cut or cut
                    if cut:
                        sink.sendall(data[: len(data) // 2])
                        break
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.server.close()


@pytest.mark.django_db(transaction=True)
def test_an_upload_whose_connection_breaks_mid_piece_goes_on_from_the_servers_offset(
    site, competition, participant, tmp_path, monkeypatch
):
    monkeypatch.setattr(transfer, "CHUNK", 64 * 1024)
    monkeypatch.setattr(transfer, "PIECE_MAX", 64 * 1024)
    # ~300 KB, sent in 64 KiB pieces; the proxy cuts the connection inside the third.
    content = factories.perfect_predictions() + b"\n" * 300_000
    path = tmp_path / "predictions.csv"
    path.write_bytes(content)
    proxy = CuttingProxy(site, cut_after=150_000)
    offsets: list[int] = []
    try:
        client = Client(proxy.url, token_of(participant))
        upload = client.upload(path, competition="tiny", progress=lambda d, t: offsets.append(d))
    finally:
        proxy.close()

    assert proxy.cut
    assert upload.offset == len(content)
    assert offsets == sorted(offsets), offsets  # never back to an earlier byte
    assert offsets[-1] == len(content)
    assert proxy.sent < len(content) + 100_000  # the cut piece's remainder only, not a restart
    direct = Client(site, token_of(participant))
    got = direct.http.json("GET", upload.url, headers=TUS)
    assert got["complete"] is True
    assert got["sha256"] == hashlib.sha256(content).hexdigest()


@pytest.mark.django_db(transaction=True)
def test_the_leaderboard_the_submissions_and_the_competitions_are_read_to_their_last_page(
    site, competition, participant
):
    start = timezone.now() - timedelta(hours=1)
    for i in range(5):
        team = factories.team_for(competition, f"team{i}")
        factories.scored_submission(
            team, {"public": {"roc_auc": 0.5 + i / 10}}, created_at=start + timedelta(minutes=i)
        )
    alice = competition.teams.get(members=participant)
    for _ in range(3):
        factories.submission_row(alice, status="queued").save()
    client = Client(site, token_of(participant))

    board = client.leaderboard("tiny", page_size=2)
    assert [row.team for row in board.rows] == [f"team{i}" for i in (4, 3, 2, 1, 0)]
    assert [row.rank for row in board.rows] == [1, 2, 3, 4, 5]
    assert len(client.submissions("tiny", page_size=2)) == 3
    for i in range(4):
        factories.make_competition(slug=f"more{i}", organizers=[])
    listed = {c.slug for c in client.competitions(page_size=2)}
    assert listed == {"tiny", "more0", "more1", "more2", "more3"}


def test_the_profiles_token_is_never_sent_to_another_server_named_by_heldout_url(
    tmp_path, monkeypatch
):
    path = tmp_path / "config.toml"
    save_profile("default", {"url": "https://a.example", "token": "t-a", "username": "al"}, path)
    monkeypatch.delenv("HELDOUT_TOKEN", raising=False)

    monkeypatch.setenv("HELDOUT_URL", "https://a.example/")
    same = resolve(None, path)
    assert (same.url, same.token, same.username) == ("https://a.example/", "t-a", "al")

    monkeypatch.setenv("HELDOUT_URL", "https://b.example")
    other = resolve(None, path)
    assert (other.url, other.token, other.source) == ("https://b.example", None, "none")

    monkeypatch.setenv("HELDOUT_TOKEN", "t-b")
    explicit = resolve(None, path)
    assert (explicit.url, explicit.token, explicit.username) == ("https://b.example", "t-b", None)


def _detail(status: str, **headers: str) -> httpx.Response:
    return httpx.Response(200, headers=headers, json={"id": 7, "status": status})


def test_wait_asks_the_server_to_hold_the_request_and_asks_again_at_once_after_its_timeout():
    transport, seen = _scripted(
        _detail("queued", **{"Heldout-Wait": "timeout"}),
        _detail("running", **{"Heldout-Wait": "timeout"}),
        _detail("scored", **{"Heldout-Wait": "finished"}),
    )
    client = Client("http://heldout.test", "secret", transport=transport)
    started = time.monotonic()
    assert client.wait(7).status == "scored"
    assert time.monotonic() - started < 0.5  # no pause between held requests
    assert [r.url.params["wait"] for r in seen] == ["30", "30", "30"]


def test_wait_pauses_between_answers_given_at_once_and_never_holds_past_its_timeout():
    transport, seen = _scripted(
        _detail("queued", **{"Heldout-Wait": "busy"}),
        _detail("queued"),  # a server without the long-poll ignores ?wait=
        _detail("queued"),
    )
    client = Client("http://heldout.test", "secret", transport=transport)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="Submission 7 is still queued"):
        client.wait(7, timeout=2.6, interval=1.0)
    assert 2.0 <= time.monotonic() - started < 2.6
    assert [int(r.url.params["wait"]) for r in seen] == [2, 1, 0]
