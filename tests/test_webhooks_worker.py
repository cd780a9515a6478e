"""Webhooks end to end: a real Celery worker scores submissions and sends the deliveries to
loopback endpoints, retrying with backoff; the receiver verifies each signature."""

from __future__ import annotations

import itertools
import json
import sys
import time

import pytest

from competitions.models import WebhookDelivery
from tests import factories
from tests.competitions.test_webhooks import verify
from tests.conftest import api_submit
from tests.webhook_server import Endpoint, webhook_endpoint
from tests.worker_process import _process, wait_for_status, worker_process

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

RETRY_BASE_S = 0.5


@pytest.fixture
def worker(tmp_path):
    log = tmp_path / "worker.log"
    env = {"HELDOUT_WEBHOOK_RETRY_BASE_S": str(RETRY_BASE_S), "HELDOUT_WEBHOOK_MAX_ATTEMPTS": "4"}
    with worker_process(log, extra_env=env) as proc:
        yield proc, log


def _register(api, user, endpoint: Endpoint, events: list[str]) -> dict:
    response = api(user).post(
        "/api/v1/webhooks/", {"url": endpoint.url, "events": events}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def _event(received) -> dict:
    return json.loads(received.body)


def _delivery_finished(delivery_id: int, log, timeout: float = 60) -> WebhookDelivery:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        if delivery.status != WebhookDelivery.Status.PENDING:
            return delivery
        time.sleep(0.1)
    pytest.fail(f"delivery {delivery_id} still pending; worker log:\n{log.read_text()[-3000:]}")


def test_each_team_hears_of_its_own_outcomes_and_everyone_of_the_finalize(
    worker, competition, organizer, participant, other_participant, api
):
    proc, log = worker
    events = ["submission.scored", "submission.failed", "competition.finalized"]
    with webhook_endpoint() as alice, webhook_endpoint() as bob, webhook_endpoint() as orga:
        alice_hook = _register(api, participant, alice, events)
        bob_hook = _register(api, other_participant, bob, events)
        orga_hook = _register(api, organizer, orga, ["competition.finalized"])

        scored = api_submit(api(participant), competition.slug, factories.perfect_predictions())
        assert wait_for_status(scored, {"scored", "failed"}, proc, log) == "scored"
        [received] = alice.wait_for(1)
        assert verify(alice_hook["secret"], received.headers["Heldout-Signature"], received.body)
        event = _event(received)
        assert event["event"] == received.headers["Heldout-Event"] == "submission.scored"
        assert event["data"]["submission"]["id"] == scored
        assert event["data"]["submission"]["scores"] == {
            "public": {"roc_auc": 1.0, "accuracy": 1.0}
        }

        failed = api_submit(api(other_participant), competition.slug, b"id,label\nid0,banana\n")
        assert wait_for_status(failed, {"scored", "failed"}, proc, log) == "failed"
        [received] = bob.wait_for(1)
        assert verify(bob_hook["secret"], received.headers["Heldout-Signature"], received.body)
        assert _event(received)["event"] == "submission.failed"
        assert _event(received)["data"]["submission"]["failure"] == "invalid"

        finalize = api(organizer).post(f"/api/v1/competitions/{competition.slug}/finalize/")
        assert finalize.status_code == 200, finalize.content
        for endpoint, hook, count in (
            (alice, alice_hook, 2),
            (bob, bob_hook, 2),
            (orga, orga_hook, 1),
        ):
            received = endpoint.wait_for(count)[-1]
            assert verify(hook["secret"], received.headers["Heldout-Signature"], received.body)
            assert _event(received)["event"] == "competition.finalized"
        time.sleep(1)  # anything else queued would have come by now
        # Neither team heard of the other's submission.
        assert [_event(r)["event"] for r in alice.received] == [
            "submission.scored",
            "competition.finalized",
        ]
        assert [_event(r)["event"] for r in bob.received] == [
            "submission.failed",
            "competition.finalized",
        ]
        assert len(orga.received) == 1


def test_a_failing_endpoint_is_retried_with_backoff_and_the_log_shows_each_attempt(
    worker, participant, api
):
    _proc, log = worker
    events = ["submission.scored"]
    with webhook_endpoint(codes=[500, 503, 200]) as flaky, webhook_endpoint(codes=[500]) as down:
        flaky_hook = _register(api, participant, flaky, events)
        down_hook = _register(api, participant, down, events)
        flaky_ping = api(participant).post(f"{flaky_hook['url']}ping/").json()
        down_ping = api(participant).post(f"{down_hook['url']}ping/").json()

        delivered = _delivery_finished(flaky_ping["id"], log)
        given_up = _delivery_finished(down_ping["id"], log)
        times = [r.at for r in flaky.received]
    assert (delivered.status, delivered.attempts, delivered.last_status_code) == (
        "succeeded",
        3,
        200,
    )
    assert (given_up.status, given_up.attempts, given_up.last_status_code) == ("failed", 4, 500)
    assert len(down.received) == 4
    # Exponential backoff: about 0.5 s, then 1 s between the tries.
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= RETRY_BASE_S * 0.9
    assert gaps[1] >= 2 * RETRY_BASE_S * 0.9
    # Every try signed the same body; the owner's log shows the attempts.
    assert len({r.body for r in flaky.received}) == 1
    log_rows = api(participant).get(f"{down_hook['url']}deliveries/").json()["results"]
    assert [(d["status"], d["attempts"], d["last_status_code"]) for d in log_rows] == [
        ("failed", 4, 500)
    ]
    assert log_rows[0]["last_error"] == "The endpoint answered HTTP 500."


def test_deliveries_and_their_retries_can_have_a_queue_of_their_own(
    tmp_path, participant, api, settings
):
    settings.HELDOUT_WEBHOOK_QUEUE = "webhooks"
    log = tmp_path / "webhooks-worker.log"
    command = [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker"]
    command += ["-Q", "webhooks", "--pool", "solo", "--without-heartbeat", "--without-mingle"]
    command += ["--without-gossip", "-l", "INFO"]
    env = {"HELDOUT_WEBHOOK_QUEUE": "webhooks", "HELDOUT_WEBHOOK_RETRY_BASE_S": "0.3"}
    with _process(command, log, env), webhook_endpoint(codes=[500, 200]) as endpoint:
        hook = _register(api, participant, endpoint, ["submission.scored"])
        ping = api(participant).post(f"{hook['url']}ping/").json()
        # Only a worker on "webhooks" runs: the retry went back to that queue.
        delivered = _delivery_finished(ping["id"], log)
    assert (delivered.status, delivered.attempts) == ("succeeded", 2)
