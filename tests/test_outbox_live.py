"""An upload accepted while the broker is down is scored within seconds of its return, not
when the reaper resends it (HELDOUT_RESEND_AFTER_S, 15 minutes): a real gunicorn whose broker
is a loopback proxy in front of Redis that the test cuts, and a real worker and `celery beat`
(sweeping the outbox every second) behind the same proxy."""

from __future__ import annotations

import time
from contextlib import ExitStack
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
from rest_framework.authtoken.models import Token

from competitions.models import OutboxMessage, Submission
from tests import factories
from tests.test_worker_faults import HeldProxy
from tests.web_process import web_process
from tests.worker_process import beat_process, worker_process

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def _wait(condition, what: str, timeout: float, logs) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.1)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-2500:]}" for log in logs if log.exists())
    pytest.fail(f"{what} did not happen within {timeout}s\n{tails}")


def test_an_upload_accepted_while_the_broker_is_down_is_scored_within_seconds_of_its_return(
    tmp_path, competition, participant
):
    broker = urlsplit(settings.CELERY_BROKER_URL)
    assert broker.scheme == "redis", "this test needs the Redis broker (CELERY_BROKER_URL)"
    proxy = HeldProxy((broker.hostname or "127.0.0.1", broker.port or 6379))
    proxied = settings.CELERY_BROKER_URL.replace(f":{broker.port or 6379}/", f":{proxy.port}/")
    fast = {"HELDOUT_SCORER": "in-process", "HELDOUT_OUTBOX_SWEEP_S": "1"}
    logs = [tmp_path / "gunicorn.log", tmp_path / "worker.log", tmp_path / "beat.log"]
    token, _ = Token.objects.get_or_create(user=participant)
    try:
        with ExitStack() as stack:
            # Every process reaches the broker through the proxy: cut, it is down for all.
            env = {**fast, "CELERY_BROKER_URL": proxied}
            base = stack.enter_context(web_process(logs[0], extra_env=env))
            stack.enter_context(worker_process(logs[1], env))
            stack.enter_context(beat_process(logs[2], env))
            _wait(lambda: " ready." in logs[1].read_text(), "the worker's start", 60, logs)
            _wait(
                lambda: "sweep-outbox runs in the scheduler" in logs[2].read_text(),
                "beat's first sweep",
                60,
                logs,
            )
            proxy.hold()
            response = requests.post(
                f"{base}/api/v1/competitions/{competition.slug}/submissions/",
                headers={"Authorization": f"Token {token.key}"},
                files={"file": ("predictions.csv", factories.perfect_predictions())},
                timeout=60,
            )
            assert response.status_code == 202, response.text
            submission_id = response.json()["id"]
            message = OutboxMessage.objects.get(args=[submission_id])
            assert message.sent_at is None
            assert message.last_error
            time.sleep(3)  # beat's sweeps fail meanwhile: the broker is still down
            assert Submission.objects.get(pk=submission_id).status == "queued"
            assert OutboxMessage.objects.get(pk=message.pk).sent_at is None
            proxy.restore()
            restored = time.monotonic()
            scored = _wait(
                lambda: Submission.objects.get(pk=submission_id).status == "scored",
                "scoring after the broker's return",
                30,
                logs,
            )
            assert scored - restored < 10
            message.refresh_from_db()
            assert message.sent_at is not None
        # The worker logs as the web does: its scoring lines name the submission.
        worker_lines = logs[1].read_text().splitlines()
        attempt = [line for line in worker_lines if "scoring attempt" in line]
        assert attempt
        assert f"submission={submission_id}]" in attempt[0]
    finally:
        proxy.close()
