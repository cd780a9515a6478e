"""Outages of the services the deployment depends on, with real processes: the broker
(a private redis-server, killed and started again), object storage (moto's S3 server
behind a loopback proxy the test holds) and the registry the scorer image is pulled from
(Debian's docker-registry, down, then started). Users get 503 with Retry-After and a
sentence (JSON under /api/, a page elsewhere), never a 500; every accepted submission is
scored exactly once when the service is back; work that hit the outage is given back
without counting against its team.

The deployment is the multi-host one (tests/fleet.py). Recovery settings are shrunk so
that the tests take seconds; HELDOUT_RESEND_AFTER_S (work queued that long is sent again)
too, since the broker here keeps nothing across its restart (the worst case).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import requests

from competitions.models import Competition, OutboxMessage, Submission
from competitions.services.submissions import SCORE_TASK
from tests import factories
from tests.fleet import (
    assert_counted_once,
    assert_scored_once,
    deployment,
    predictions,
    token_of,
    unfinished,
    until,
    upload,
    upload_all,
)
from tests.registry_server import free_port, registry_server, untag
from tests.test_worker_faults import HeldProxy

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

HOSTS = ("host-1", "host-2")
FAST = {
    "HELDOUT_SCORER": "in-process",
    "HELDOUT_HEARTBEAT_S": "1",
    "HELDOUT_RECOVER_AFTER_S": "6",
    "HELDOUT_REAP_EVERY_S": "1",
    "HELDOUT_OUTBOX_SWEEP_S": "1",
    "HELDOUT_RESEND_AFTER_S": "6",
}
# The outbox's sweep runs every second: an upload accepted while the broker was down is
# sent within that of its return, plus the broker's reconnection and a loaded machine.
QUEUED_WITHIN_S = 6


def _competition(organizer, users: list[str]) -> tuple[Competition, dict[str, str]]:
    competition = factories.make_competition(organizers=[organizer], daily_limit=50)
    tokens = {name: token_of(factories.team_for(competition, name).members.get()) for name in users}
    return competition, tokens


def _uploads(competition: Competition, tokens: list[str], n: int, first: int = 0) -> list:
    return [(tokens[i % len(tokens)], competition.slug, predictions(first + i)) for i in range(n)]


def test_a_broker_restart_loses_no_submission_and_uploads_meanwhile_are_queued_on_its_return(
    tmp_path, on_s3, organizer
):
    competition, by_name = _competition(organizer, ["team0", "team1"])
    tokens = list(by_name.values())
    with deployment(tmp_path, {**on_s3.env(), **FAST}, HOSTS) as fleet:
        before = upload_all(fleet.base, _uploads(competition, tokens, 16))
        until(
            lambda: Submission.objects.filter(pk__in=before, status="scored").count() >= 2,
            "the first scorings",
            60,
            fleet.logs,
        )
        # Killed mid-stream: what it held (queued messages, unacknowledged ones) is lost.
        fleet.broker.kill()
        during = upload_all(fleet.base, _uploads(competition, tokens, 4, first=16))
        # The scoring messages (a board's intervals task may carry the same number).
        scorings = OutboxMessage.objects.filter(task=SCORE_TASK, args__in=[[pk] for pk in during])
        unsent = scorings.filter(sent_at=None)
        assert unsent.count() == len(during)
        time.sleep(2)
        assert set(Submission.objects.filter(pk__in=during).values_list("status", flat=True)) == {
            "queued"
        }
        fleet.broker.start()
        back = datetime.now(UTC)
        # What the broker lost is sent again by the reaper (HELDOUT_RESEND_AFTER_S).
        until(lambda: not unfinished(before + during), "scoring after the restart", 45, fleet.logs)
        fleet.alive()  # the workers reconnected
        assert_counted_once(fleet.base, competition, dict.fromkeys(tokens, 10))

    for message in scorings:
        assert message.sent_at is not None
        assert (message.sent_at - back).total_seconds() < QUEUED_WITHIN_S
    assert_scored_once(before + during)


def _page_upload(base: str, username: str, slug: str, content: bytes) -> requests.Response:
    """The submit page's form, sent by a signed-in participant."""
    session = requests.Session()
    session.get(f"{base}/accounts/login/", timeout=30)
    signed_in = session.post(
        f"{base}/accounts/login/",
        data={
            "username": username,
            "password": f"pw-{username}",
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        timeout=30,
        allow_redirects=False,
    )
    assert signed_in.status_code == 302, signed_in.text[:500]
    session.get(f"{base}/c/{slug}/submit/", timeout=30)
    return session.post(
        f"{base}/c/{slug}/submit/",
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
        files={"file": ("predictions.csv", content)},
        timeout=60,
    )


def _assert_outage_answers(api: requests.Response, page: requests.Response) -> None:
    assert api.status_code == 503, api.text[:500]
    assert api.headers["Retry-After"] == "30"
    assert api.headers["Content-Type"] == "application/json"
    assert api.json()["code"] == "service_unavailable"
    assert "cannot reach file storage" in api.json()["detail"]
    assert page.status_code == 503, page.text[:500]
    assert page.headers["Retry-After"] == "30"
    assert page.headers["Content-Type"].startswith("text/html")
    assert "cannot reach file storage" in page.text


def _log_says(fleet, text: str) -> bool:
    return any(text in log.read_text() for log in fleet.logs if log.exists())


@pytest.mark.docker
def test_storage_and_registry_outages_answer_503_and_cost_no_submission_anything(
    tmp_path, on_s3, docker_client, pushed_scorer, registry, organizer
):
    # The scorer image by digest on a registry that is down (a second server on the pushed
    # storage, started later), the buckets behind a proxy.
    port = free_port()
    reference = f"127.0.0.1:{port}/heldout/scorer@{pushed_scorer.partition('@')[2]}"
    store = urlsplit(on_s3.endpoint_url)
    proxy = HeldProxy((store.hostname or "127.0.0.1", store.port or 80))
    competition, by_name = _competition(organizer, ["team0", "team1"])
    tokens = list(by_name.values())
    env = {
        **on_s3.env(),
        **FAST,
        "HELDOUT_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
        "HELDOUT_SCORER": "docker",
        "HELDOUT_SCORER_IMAGE": reference,
        "HELDOUT_SCORER_IMAGES": reference,
    }
    try:
        with deployment(tmp_path, env, HOSTS[:1]) as fleet:
            first = upload_all(fleet.base, _uploads(competition, tokens, 2))
            until(lambda: _log_says(fleet, f"could not pull {reference}"), "a pull", 60, fleet.logs)
            proxy.hold()
            api = upload(fleet.base, tokens[0], competition.slug, predictions(100))
            page = _page_upload(fleet.base, "team1", competition.slug, predictions(101))
            _assert_outage_answers(api, page)
            with registry_server(registry["storage"], port, tmp_path / "registry.log"):
                until(lambda: _log_says(fleet, "storage failed"), "a give-back", 60, fleet.logs)
                proxy.restore()
                second = upload_all(fleet.base, _uploads(competition, tokens, 1, first=2))
                # Sandboxed scorings: slow on a loaded machine.
                until(lambda: not unfinished(first + second), "scoring", 240, fleet.logs)
            fleet.alive()
            assert_counted_once(fleet.base, competition, {tokens[0]: 2, tokens[1]: 1})
    finally:
        proxy.close()
        untag(docker_client, reference)

    # Nothing but the accepted uploads became submissions; each was given back (not
    # interrupted, not failed) and scored once, by the image pulled once the registry was up.
    assert Submission.objects.filter(competition=competition).count() == 3
    assert_scored_once(first + second)
    for submission in Submission.objects.filter(pk__in=first):
        outcomes = factories.outcomes(submission)
        assert len(outcomes) >= 2
        assert set(outcomes[:-1]) == {"returned"}
        assert outcomes[-1] == "scored"
