"""Webhooks (docs/api.md#webhooks): registering, the owner-only API, what each event sends
to whom (never hidden data), signing, retries and the SSRF guard. Deliveries are attempted
here by calling the service, as the task does; tests/test_webhooks_worker.py goes through
the queue."""

from __future__ import annotations

import functools
import json
import re
import ssl
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from competitions.errors import ApplicationError
from competitions.models import Attempt, Membership, Submission, Webhook, WebhookDelivery
from competitions.services.events import submission_outcome_emit
from competitions.services.lifecycle import competition_finalize
from competitions.services.submissions import submission_create
from competitions.services.webhooks import webhook_create, webhook_delivery_attempt
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from tests import factories
from tests.webhook_server import webhook_endpoint

pytestmark = pytest.mark.django_db

ALL = ["submission.scored", "submission.failed", "competition.finalized"]
SCORES: dict[str, dict[str, float | None]] = {
    "public": {"roc_auc": 0.9, "accuracy": 0.8},
    "private": {"roc_auc": 0.7, "accuracy": 0.6},
}


def _documented_verify() -> Callable[..., bool]:
    """The signature check docs/api.md gives receivers, run as written there."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    snippet = re.search(r"```python\n(import hashlib.*?def verify.*?)```", text, re.S)
    assert snippet, "docs/api.md has no verify() snippet"
    namespace: dict = {}
    exec(snippet[1], namespace)
    return namespace["verify"]


verify = _documented_verify()


def _team(user, competition):
    return Membership.objects.get(user=user, competition=competition).team


def _hook(user, events=None, competition=None, url="http://127.0.0.1:9/hook") -> Webhook:
    hook, _ = webhook_create(owner=user, url=url, events=events or ALL, competition=competition)
    return hook


def _payloads(hook: Webhook) -> list[dict]:
    return [json.loads(d.body) for d in hook.deliveries.order_by("pk")]


def _scored(user, competition) -> Submission:
    created = timezone.now() - timedelta(minutes=5)
    return factories.scored_submission(_team(user, competition), SCORES, created_at=created)


# --- The API ---------------------------------------------------------------------------


def test_a_user_registers_a_hook_and_sees_its_secret_only_once(participant, competition, api):
    response = api(participant).post(
        "/api/v1/webhooks/",
        {"url": "https://example.org/hook", "events": ["submission.scored"], "competition": "tiny"},
        format="json",
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert len(created["secret"]) > 40
    assert created["competition"] == "tiny"
    assert created["events"] == ["submission.scored"]
    assert response["Location"] == created["url"]
    listed = api(participant).get("/api/v1/webhooks/").json()
    assert (listed["count"], listed["next"], listed["previous"]) == (1, None, None)
    assert [h["id"] for h in listed["results"]] == [created["id"]]
    assert "secret" not in listed["results"][0]
    assert "secret" not in api(participant).get(created["url"]).json()
    assert Webhook.objects.get().secret == created["secret"]


def test_a_hook_without_competition_covers_all_of_mine(participant, api):
    body = {"url": "https://example.org/hook", "events": ["competition.finalized"]}
    created = api(participant).post("/api/v1/webhooks/", body, format="json").json()
    assert created["competition"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://example.org/hook", "events": []},
        {"url": "https://example.org/hook", "events": ["submission.deleted"]},
        {"url": "ftp://example.org/hook", "events": ["submission.scored"]},
        {"url": "not a url", "events": ["submission.scored"]},
        {"url": "https://user:pw@example.org/hook", "events": ["submission.scored"]},
    ],
)
def test_it_refuses_a_hook_with_unknown_events_or_a_url_that_is_not_http(participant, api, body):
    response = api(participant).post("/api/v1/webhooks/", body, format="json")
    assert response.status_code == 400, response.content
    assert not Webhook.objects.exists()


@override_settings(HELDOUT_WEBHOOKS_ALLOW_PRIVATE=False)
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",
    ],
)
def test_in_production_it_refuses_private_and_loopback_addresses(participant, api, url):
    body = {"url": url, "events": ["submission.scored"]}
    response = api(participant).post("/api/v1/webhooks/", body, format="json")
    assert response.status_code == 400, response.content
    assert "private, loopback or reserved" in response.json()["detail"]


@override_settings(HELDOUT_WEBHOOKS_ALLOW_PRIVATE=False)
@pytest.mark.parametrize(
    "url", ["http://2130706433/", "http://0x7f000001/", "http://127.1/", "http://[fd00::1]/"]
)
def test_the_service_refuses_loopback_written_otherwise(participant, url):
    with pytest.raises(ApplicationError, match="private, loopback or reserved"):
        webhook_create(owner=participant, url=url, events=ALL)


@override_settings(HELDOUT_WEBHOOKS_ALLOW_PRIVATE=False)
def test_a_delivery_to_an_address_that_became_private_is_not_sent(participant):
    with webhook_endpoint() as endpoint:
        hook = Webhook.objects.create(
            owner=participant, url=endpoint.url, secret="s", events=ALL
        )  # as if the name resolved elsewhere when it was registered
        api_ping(hook)
        delivery = hook.deliveries.get()
        assert webhook_delivery_attempt(delivery_id=delivery.pk) == 30.0
    delivery.refresh_from_db()
    assert endpoint.received == []
    assert "private, loopback or reserved" in delivery.last_error


def api_ping(hook: Webhook) -> None:
    from competitions.services.webhooks import webhook_ping

    webhook_ping(webhook=hook)


def test_only_participants_and_organizers_limit_a_hook_to_a_competition(
    competition, other_competition, participant, other_participant, organizer, other_organizer,
    outsider, api,
):  # fmt: skip
    def create(user, slug):
        body = {"url": "https://example.org/h", "events": ALL, "competition": slug}
        return api(user).post("/api/v1/webhooks/", body, format="json").status_code

    assert create(participant, "tiny") == 201
    assert create(other_participant, "tiny") == 201
    assert create(organizer, "tiny") == 201
    assert create(outsider, "tiny") == 403
    assert create(other_organizer, "tiny") == 403
    assert create(participant, "other") == 403
    assert create(participant, "nope") == 404


def test_every_webhook_url_is_its_owners_alone(
    competition, other_competition, participant, other_participant, other_organizer, outsider,
    api,
):  # fmt: skip
    hook = _hook(participant, competition=competition)
    base = f"/api/v1/webhooks/{hook.pk}"
    calls = [
        ("get", f"{base}/"),
        ("patch", f"{base}/"),
        ("delete", f"{base}/"),
        ("get", f"{base}/deliveries/"),
        ("post", f"{base}/ping/"),
    ]
    for user in (outsider, other_participant, other_organizer):
        for method, url in calls:
            response = getattr(api(user), method)(url, {"active": False}, format="json")
            assert response.status_code == 404, (user, method, url)
        assert api(user).get("/api/v1/webhooks/").json()["results"] == []
    for method, url in [*calls, ("get", "/api/v1/webhooks/"), ("post", "/api/v1/webhooks/")]:
        assert getattr(api(None), method)(url).status_code == 401, (method, url)
    hook.refresh_from_db()
    assert hook.active
    assert not hook.deliveries.exists()


def test_the_owner_pauses_pings_and_deletes_a_hook(participant, api):
    hook = _hook(participant)
    url = f"/api/v1/webhooks/{hook.pk}/"
    assert api(participant).patch(url, {"active": False}, format="json").json()["active"] is False
    ping = api(participant).post(f"{url}ping/")
    assert ping.status_code == 202
    assert ping.json()["event"] == "ping"
    log = api(participant).get(f"{url}deliveries/").json()
    assert log["count"] == 1
    assert log["results"][0]["status"] == "pending"
    # An inactive hook's pending delivery is given up, not sent.
    assert webhook_delivery_attempt(delivery_id=ping.json()["id"]) is None
    delivery = api(participant).get(f"{url}deliveries/").json()["results"][0]
    assert (delivery["status"], delivery["last_error"]) == ("failed", "The webhook is inactive.")
    assert api(participant).delete(url).status_code == 204
    assert not Webhook.objects.exists()
    assert not WebhookDelivery.objects.exists()


# --- What each event sends, to whom ---------------------------------------------------


def test_another_teams_submission_never_reaches_my_hook(
    competition, participant, other_participant, organizer
):
    mine, theirs = _hook(participant), _hook(other_participant)
    organizers = _hook(organizer)
    submission_outcome_emit(submission_id=_scored(other_participant, competition).pk)
    assert not mine.deliveries.exists()
    assert not organizers.deliveries.exists()
    assert [p["data"]["submission"]["team"] for p in _payloads(theirs)] == ["bob"]


def test_a_scored_event_carries_only_the_scores_its_owner_may_read(competition, participant):
    hook = _hook(participant)
    scored = _scored(participant, competition)
    assert submission_outcome_emit(submission_id=scored.pk) == 1
    [payload] = _payloads(hook)
    assert payload["event"] == "submission.scored"
    data = payload["data"]["submission"]
    assert data["id"] == scored.pk
    assert data["status"] == "scored"
    assert data["url"] == f"/api/v1/submissions/{scored.pk}/"
    assert data["scores"] == {"public": SCORES["public"]}  # private: hidden until finalized
    competition_finalize(competition=competition)
    submission_outcome_emit(submission_id=scored.pk)
    assert _payloads(hook)[-1]["data"]["submission"]["scores"] == SCORES


def test_a_failed_submission_sends_submission_failed_to_hooks_that_want_it(
    competition, participant
):
    wants_failures = _hook(participant, events=["submission.failed"])
    wants_scores = _hook(participant, events=["submission.scored"])
    failed = factories.submission_row(
        _team(participant, competition),
        status=Submission.Status.FAILED,
        failure=Submission.Failure.INVALID,
        error_message="The file has 2 problem(s); nothing was scored.",
    )
    failed.save()
    submission_outcome_emit(submission_id=failed.pk)
    [payload] = _payloads(wants_failures)
    assert payload["data"]["submission"]["failure"] == "invalid"
    assert payload["data"]["submission"]["scores"] == {}
    assert not wants_scores.deliveries.exists()


def test_a_submission_not_finished_sends_nothing(competition, participant):
    hook = _hook(participant)
    queued = factories.submission_row(_team(participant, competition))
    queued.save()
    assert submission_outcome_emit(submission_id=queued.pk) == 0
    assert not hook.deliveries.exists()


def test_an_attempt_whose_outcome_is_another_attempts_sends_nothing(competition, participant):
    hook = _hook(participant)
    scored = _scored(participant, competition)
    Attempt.objects.create(submission=scored, number=3, outcome="scored")
    assert submission_outcome_emit(submission_id=scored.pk, attempt=2) == 0
    assert submission_outcome_emit(submission_id=scored.pk, attempt=3) == 1
    assert hook.deliveries.count() == 1


def test_a_hook_limited_to_another_competition_hears_nothing_of_this_one(
    competition, other_competition, participant
):
    competition_join_other(participant, other_competition)
    hook = _hook(participant, competition=other_competition)
    submission_outcome_emit(submission_id=_scored(participant, competition).pk)
    competition_finalize(competition=competition)
    assert not hook.deliveries.exists()


def competition_join_other(user, competition):
    from competitions.services.teams import competition_join

    competition_join(competition=competition, user=user, accept_rules=True)


def test_finalize_reaches_its_participants_and_organizers_hooks_only(
    competition, other_competition, participant, other_participant, organizer,
    other_organizer, outsider,
):  # fmt: skip
    hooks = {
        user.username: _hook(user)
        for user in (participant, other_participant, organizer, other_organizer, outsider)
    }
    scores_only = _hook(participant, events=["submission.scored"])
    competition_finalize(competition=competition)
    reached = sorted(name for name, hook in hooks.items() if hook.deliveries.exists())
    assert reached == ["alice", "bob", "orga"]
    assert not scores_only.deliveries.exists()
    [payload] = _payloads(hooks["alice"])
    assert payload["event"] == "competition.finalized"
    assert payload["data"]["competition"]["slug"] == "tiny"
    assert payload["data"]["competition"]["finalized_at"]
    # One event, one id in every hook's delivery (receivers deduplicate by it).
    assert {_payloads(h)[0]["id"] for n, h in hooks.items() if n in reached} == {payload["id"]}


# --- Sending -----------------------------------------------------------------------------


def test_a_delivery_is_signed_with_the_hooks_secret(participant, competition):
    with webhook_endpoint() as endpoint:
        hook, secret = webhook_create(owner=participant, url=endpoint.url, events=ALL)
        submission_outcome_emit(submission_id=_scored(participant, competition).pk)
        delivery = hook.deliveries.get()
        assert webhook_delivery_attempt(delivery_id=delivery.pk) is None
        [received] = endpoint.received
    headers = received.headers
    assert verify(secret, headers["Heldout-Signature"], received.body)
    assert not verify("whsec_wrong", headers["Heldout-Signature"], received.body)
    assert not verify(secret, headers["Heldout-Signature"], received.body + b" ")
    assert headers["Heldout-Event"] == "submission.scored"
    assert headers["Heldout-Delivery"] == str(delivery.pk)
    assert headers["Content-Type"] == "application/json"
    assert json.loads(received.body)["data"]["submission"]["status"] == "scored"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    # A redelivered task finds nothing to do: nothing is sent twice.
    assert webhook_delivery_attempt(delivery_id=delivery.pk) is None
    assert len(endpoint.received) == 1


@override_settings(HELDOUT_WEBHOOK_MAX_ATTEMPTS=4, HELDOUT_WEBHOOK_RETRY_BASE_S=30)
def test_a_failing_endpoint_is_retried_with_growing_delays_then_given_up(participant):
    with webhook_endpoint(codes=[500, 502, 404, 500]) as endpoint:
        hook = _hook(participant, url=endpoint.url)
        api_ping(hook)
        delivery = hook.deliveries.get()
        delays = []
        for _ in range(4):
            delays.append(webhook_delivery_attempt(delivery_id=delivery.pk))
            delivery.refresh_from_db()
            if delivery.status == "pending":
                delay, next_try_at = delays[-1], delivery.next_try_at
                assert delay is not None
                assert next_try_at is not None
                due = next_try_at - timezone.now()
                assert timedelta(seconds=delay - 2) < due <= timedelta(seconds=delay)
                # Not due yet: a task arriving early does nothing.
                assert webhook_delivery_attempt(delivery_id=delivery.pk) is None
                WebhookDelivery.objects.filter(pk=delivery.pk).update(next_try_at=timezone.now())
    assert delays == [30.0, 60.0, 120.0, None]
    assert len(endpoint.received) == 4
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 4, 500)
    assert delivery.last_error == "The endpoint answered HTTP 500."


def test_a_redirect_is_not_followed_and_counts_as_a_failure(participant):
    with webhook_endpoint(codes=[302]) as endpoint:
        hook = _hook(participant, url=endpoint.url)
        api_ping(hook)
        delivery = hook.deliveries.get()
        assert webhook_delivery_attempt(delivery_id=delivery.pk) == 30.0
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == ("pending", 302)


def test_an_endpoint_that_refuses_the_connection_is_logged_and_retried(participant):
    with webhook_endpoint() as endpoint:
        url = endpoint.url  # closed when the block ends: nothing listens there any more
    hook = _hook(participant, url=url)
    api_ping(hook)
    delivery = hook.deliveries.get()
    assert webhook_delivery_attempt(delivery_id=delivery.pk) == 30.0
    delivery.refresh_from_db()
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("ConnectionRefusedError")
    assert delivery.attempts == 1


# --- The scoring service's call ----------------------------------------------------------


def _score_in_process(competition, user) -> int:
    submission = submission_create(
        competition=competition,
        user=user,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    assert submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    return submission.pk


def test_scoring_a_submission_records_its_event(competition, participant):
    hook = _hook(participant, events=["submission.scored"])
    submission_id = _score_in_process(competition, participant)
    [payload] = _payloads(hook)
    assert payload["data"]["submission"]["id"] == submission_id
    assert payload["data"]["submission"]["scores"]["public"]["roc_auc"] == 1.0


def test_a_broken_event_never_undoes_the_score(competition, participant, monkeypatch):
    hook = _hook(participant)

    def broken(**kwargs):
        raise RuntimeError("no events today")

    monkeypatch.setattr("competitions.services.events.event_emit", broken)
    submission_id = _score_in_process(competition, participant)
    assert Submission.objects.get(pk=submission_id).status == "scored"
    assert not hook.deliveries.exists()


def test_the_periodic_resend_picks_up_only_deliveries_whose_message_was_lost(
    participant, monkeypatch, django_capture_on_commit_callbacks
):
    from competitions.services.webhooks import webhook_deliveries_resend, webhook_ping
    from competitions.tasks import webhook_deliver_task

    sent: list[tuple[list[int], str]] = []
    monkeypatch.setattr(
        webhook_deliver_task, "apply_async", lambda args, queue: sent.append((args, queue))
    )
    hook = _hook(participant)
    lost, due_soon, delivered = (webhook_ping(webhook=hook) for _ in range(3))
    long_ago = timezone.now() - timedelta(minutes=10)
    WebhookDelivery.objects.filter(pk=lost.pk).update(next_try_at=long_ago)
    WebhookDelivery.objects.filter(pk=due_soon.pk).update(
        next_try_at=timezone.now() + timedelta(seconds=30)
    )
    WebhookDelivery.objects.filter(pk=delivered.pk).update(
        status="succeeded", finished_at=long_ago, next_try_at=long_ago
    )
    # Sent through the outbox, once the (test's) transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_deliveries_resend() == 1
    assert sent == [([lost.pk], "cpu")]


@override_settings(HELDOUT_WEBHOOKS_ALLOW_PRIVATE=False)
def test_a_delivery_goes_to_the_address_that_was_vetted_not_to_a_later_answer(
    participant, monkeypatch
):
    """DNS rebinding: the name resolves to a vetted address, then elsewhere; the POST goes
    to the vetted one, with the name as its Host."""
    import socket

    from competitions import webhook_http

    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"])  # the vetting's answer; any later one: a blackhole

    def rebinding(host, port, *args, **kwargs):
        if host == "hooks.example":
            return real(next(answers, "10.255.255.1"), port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    # Loopback stands in for a public address here; the second answer would be refused.
    monkeypatch.setattr(webhook_http, "address_allowed", lambda a: a == "127.0.0.1")
    with webhook_endpoint() as endpoint:
        port = endpoint.url.split(":")[2].split("/")[0]
        hook = Webhook.objects.create(
            owner=participant, url=f"http://hooks.example:{port}/hook?x=1", secret="s", events=ALL
        )
        api_ping(hook)
        delivery = hook.deliveries.get()
        assert webhook_delivery_attempt(delivery_id=delivery.pk) is None
        [received] = endpoint.received
    assert received.headers["Host"] == f"hooks.example:{port}"
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"


@pytest.fixture
def localhost_cert(tmp_path):
    """A self-signed certificate for localhost (made by the openssl command)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]
    command += ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return cert, server


def test_an_https_endpoint_is_reached_over_verified_tls(participant, localhost_cert, monkeypatch):
    from competitions import webhook_http

    cert, server = localhost_cert
    with webhook_endpoint(tls=server) as endpoint:
        hook = _hook(participant, url=endpoint.url)
        api_ping(hook)
        delivery = hook.deliveries.get()
        # Not trusted: the certificate check refuses it, nothing is sent.
        assert webhook_delivery_attempt(delivery_id=delivery.pk) == 30.0
        delivery.refresh_from_db()
        assert "CERTIFICATE_VERIFY_FAILED" in delivery.last_error
        assert endpoint.received == []

        trusting = functools.partial(ssl.create_default_context, cafile=str(cert))
        monkeypatch.setattr(webhook_http.ssl, "create_default_context", trusting)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_try_at=timezone.now())
        assert webhook_delivery_attempt(delivery_id=delivery.pk) is None
        [received] = endpoint.received
    assert json.loads(received.body)["event"] == "ping"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)


@override_settings(HELDOUT_WEBHOOK_TIMEOUT_S=1)
def test_an_endpoint_that_drips_its_answer_is_cut_off_at_the_time_out(participant):
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            for _ in range(150):  # a header, a byte every 0.2 s: 30 s in all
                if stop.wait(0.2):
                    return
                conn.sendall(b"X")

    thread = threading.Thread(target=drip)
    thread.start()
    try:
        port = listener.getsockname()[1]
        hook = _hook(participant, url=f"http://127.0.0.1:{port}/hook")
        api_ping(hook)
        delivery = hook.deliveries.get()
        start = time.monotonic()
        assert webhook_delivery_attempt(delivery_id=delivery.pk) == 30.0
        took = time.monotonic() - start
    finally:
        stop.set()
        thread.join()
        listener.close()
    delivery.refresh_from_db()
    assert delivery.last_error == "TimeoutError: no complete answer within 1 s"
    assert took < 3
