"""Error reporting to Sentry, end to end: a fake Sentry on loopback records what it is sent.
With HELDOUT_SENTRY_DSN set, an error raised in a view of a real gunicorn and one raised in
a Celery task of a real worker process both arrive, tagged with the request's id and the
submission's; no cookie or token goes with them. Without it, the same errors send nothing,
even with the SDK's own SENTRY_DSN pointing at the fake. A DSN set where the SDK is missing
stops the process at start-up, naming what to install."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from config.celery_app import app
from tests.test_deploy import ROOT
from tests.web_process import web_process
from tests.worker_process import until, worker_process

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

REQUEST_ID = "sentry-probe-request-1"
# Not a number: the scoring task fails on it (ValueError) inside the submission's log context.
BAD_SUBMISSION_ID = "sentry-probe-not-a-number"
SECRET = "sentry-probe-secret"  # sent as a cookie and a token: never reported


@dataclass(frozen=True)
class Item:
    path: str
    auth: str  # the X-Sentry-Auth header
    type: str
    payload: bytes


class FakeSentry:
    """Records every item of every envelope (or legacy store) POSTed to it, gzip undone."""

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = self.headers.get("Content-Encoding", "")
                fake.record(self.path, self.headers.get("X-Sentry-Auth", ""), encoding, body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://probe-key@127.0.0.1:{self.server.server_address[1]}/1"

    def record(self, path: str, auth: str, encoding: str, body: bytes) -> None:
        with self._lock:
            if encoding not in ("", "gzip"):
                self.problems.append(f"{path}: unexpected Content-Encoding {encoding!r}")
                return
            body = gzip.decompress(body) if encoding == "gzip" else body
            if path.endswith("/store/"):
                self.items.append(Item(path, auth, "event", body))
                return
            self.items.extend(Item(path, auth, kind, data) for kind, data in envelope_items(body))

    def received(self) -> list[Item]:
        with self._lock:
            return list(self.items)

    def events(self) -> list[dict]:
        return [json.loads(item.payload) for item in self.received() if item.type == "event"]


def envelope_items(body: bytes) -> list[tuple[str, bytes]]:
    """(type, payload) of each item of a Sentry envelope: a header line, then per item a
    header line and a payload, `length` bytes long or up to the next newline."""
    _, _, rest = body.partition(b"\n")
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] :]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header["type"], payload))
    return items


@pytest.fixture
def sentry() -> Iterator[FakeSentry]:
    fake = FakeSentry()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        assert not fake.problems, fake.problems


@contextmanager
def both_failed(tmp_path: Path, env: dict[str, str]) -> Iterator[list[Path]]:
    """A gunicorn (with tests/sentry_urls.py's failing view) and a worker, both with `env`:
    a request to the failing view has answered 500 and a scoring task given an id that is
    not a number has failed. Yields their logs; on exit both processes have stopped."""
    web_log, worker_log = tmp_path / "gunicorn.log", tmp_path / "worker.log"
    with ExitStack() as stack:
        worker = stack.enter_context(worker_process(worker_log, extra_env=env))
        site_env = {**env, "DJANGO_SETTINGS_MODULE": "tests.sentry_site"}
        base = stack.enter_context(web_process(web_log, "--workers", "1", extra_env=site_env))
        answer = requests.get(
            f"{base}/sentry-probe/fail/",
            headers={"X-Request-ID": REQUEST_ID, "Authorization": f"Bearer {SECRET}"},
            cookies={"sessionid": SECRET},
            timeout=30,
        )
        assert answer.status_code == 500, answer.text[:2000]
        assert answer.headers["X-Request-ID"] == REQUEST_ID
        app.send_task("scoring.tasks.submission_score_task", args=[BAD_SUBMISSION_ID], queue="cpu")
        failed = "raised unexpected: ValueError"
        until(lambda: failed in worker_log.read_text(), "the task's failure", 60, [worker_log])
        assert worker.poll() is None
        yield [web_log, worker_log]


def wait_for_event(sentry: FakeSentry, error: str, logs: list[Path]) -> dict:
    """The first event whose exception is of type `error`, waiting for it a while."""

    def found() -> list[dict]:
        return [e for e in sentry.events() if error in exception_types(e)]

    until(lambda: bool(found()), f"a {error} reported to the fake Sentry", 30, logs)
    return found()[0]


def exception_types(event: dict) -> list[str]:
    return [value["type"] for value in event.get("exception", {}).get("values", [])]


def test_errors_of_a_view_and_of_a_task_reach_sentry_with_their_request_and_submission(
    tmp_path, sentry
):
    env = {"HELDOUT_SENTRY_DSN": sentry.dsn, "SENTRY_DSN": ""}
    with both_failed(tmp_path, env) as logs:
        web = wait_for_event(sentry, "SentryProbeError", logs)
        task = wait_for_event(sentry, "ValueError", logs)

    assert web.get("tags", {}).get("request_id") == REQUEST_ID
    assert web["request"]["url"].endswith("/sentry-probe/fail/")
    assert "submission_id" not in web.get("tags", {})
    assert task.get("tags", {}).get("submission_id") == BAD_SUBMISSION_ID
    assert "request_id" not in task.get("tags", {})
    assert task["extra"]["celery-job"]["task_name"] == "scoring.tasks.submission_score_task"
    assert BAD_SUBMISSION_ID in task["exception"]["values"][-1]["value"]
    for event in (web, task):  # send_default_pii=False: no cookie, token or user
        assert SECRET not in json.dumps(event)
        assert "user" not in event
    received = sentry.received()
    assert {item.path for item in received} == {"/api/1/envelope/"}
    assert all("sentry_key=probe-key" in item.auth for item in received)


def test_without_a_dsn_the_same_errors_send_nothing_even_with_the_sdks_own_variable(
    tmp_path, sentry
):
    # SENTRY_DSN is what sentry_sdk.init() reads when given no DSN: pointing it at the fake
    # makes this test fail if the SDK were ever started without HELDOUT_SENTRY_DSN.
    env = {"HELDOUT_SENTRY_DSN": "", "SENTRY_DSN": sentry.dsn}
    with both_failed(tmp_path, env):
        pass
    # Both processes have stopped, and a started SDK sends what it holds at exit.
    sent = sentry.received()
    assert not sent, [(item.type, item.payload[:300]) for item in sent]


_MISSING_SDK = """
import sys
sys.modules["sentry_sdk"] = None  # as if installed without the `sentry` extra
import django
django.setup()
"""


def test_a_dsn_set_where_the_sdk_is_missing_stops_the_process_naming_the_extra():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    env["HELDOUT_SENTRY_DSN"] = "http://probe-key@127.0.0.1:9/1"  # nothing listens there
    started = subprocess.run(
        [sys.executable, "-c", _MISSING_SDK],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode != 0
    assert "ImproperlyConfigured" in started.stderr
    assert "HELDOUT_SENTRY_DSN is set but sentry-sdk is not installed" in started.stderr
    assert "the `sentry` extra" in started.stderr
