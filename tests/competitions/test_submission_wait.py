"""`GET /api/v1/submissions/<id>/?wait=N` (docs/api.md#waiting-for-a-score): answers as soon
as the submission's outcome is recorded, or after N seconds (at most 60), or at once when
the process's wait slots are taken. The outcome is written by another thread on its own
connection, as a worker would."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from competitions.models import Membership, Submission
from competitions.waiting import WAIT_MAX_S, wait_slots
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(competition, participant) -> Submission:
    team = Membership.objects.get(user=participant, competition=competition).team
    submission = factories.submission_row(team)
    submission.save()
    return submission


def _finish_later(submission_id: int, after_s: float) -> threading.Thread:
    def finish() -> None:
        time.sleep(after_s)
        try:
            Submission.objects.filter(pk=submission_id).update(status=Submission.Status.FAILED)
        finally:
            connection.close()

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


def _get(client, url):
    start = time.monotonic()
    response = client.get(url)
    return response, time.monotonic() - start


def test_the_wait_answers_as_soon_as_the_outcome_is_recorded(queued, participant, api):
    thread = _finish_later(queued.pk, 1.0)
    response, took = _get(api(participant), f"/api/v1/submissions/{queued.pk}/?wait=30")
    thread.join()
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert response["Heldout-Wait"] == "finished"
    assert 0.9 <= took < 5


def test_the_wait_times_out_with_the_submission_still_queued(queued, participant, api):
    response, took = _get(api(participant), f"/api/v1/submissions/{queued.pk}/?wait=1.2")
    assert response.json()["status"] == "queued"
    assert response["Heldout-Wait"] == "timeout"
    assert 1.2 <= took < 3


def test_a_finished_submission_is_answered_without_waiting(queued, participant, api):
    Submission.objects.filter(pk=queued.pk).update(status=Submission.Status.SCORED)
    response, took = _get(api(participant), f"/api/v1/submissions/{queued.pk}/?wait=30")
    assert response["Heldout-Wait"] == "finished"
    assert took < 1


def test_without_wait_nothing_waits_and_no_header_is_sent(queued, participant, api):
    response, took = _get(api(participant), f"/api/v1/submissions/{queued.pk}/")
    assert not response.has_header("Heldout-Wait")
    assert took < 1


def test_a_wait_beyond_the_processs_slots_is_answered_at_once(queued, participant, api):
    slots = wait_slots()
    taken = 0
    while slots.acquire(blocking=False):
        taken += 1
    try:
        assert taken == 4  # HELDOUT_WAITS_PER_PROCESS's default
        response, took = _get(api(participant), f"/api/v1/submissions/{queued.pk}/?wait=30")
    finally:
        for _ in range(taken):
            slots.release()
    assert response["Heldout-Wait"] == "busy"
    assert response.json()["status"] == "queued"
    assert took < 1


def test_the_wait_is_capped_at_sixty_seconds(queued, participant, api, monkeypatch):
    asked = []

    def fake_wait(*, submission_id: int, seconds: float) -> str:
        asked.append(seconds)
        return "timeout"

    monkeypatch.setattr("competitions.api.submissions.submission_wait", fake_wait)
    api(participant).get(f"/api/v1/submissions/{queued.pk}/?wait=3600")
    assert asked == [WAIT_MAX_S] == [60]


@pytest.mark.parametrize("wait", ["soon", "-1", "nan", "inf"])
def test_a_malformed_wait_is_refused(queued, participant, api, wait):
    response = api(participant).get(f"/api/v1/submissions/{queued.pk}/?wait={wait}")
    assert response.status_code == 400


def test_others_cannot_wait_on_my_submission(
    queued, outsider, other_participant, other_organizer, other_competition, api
):
    for user in (outsider, other_participant, other_organizer):
        response, took = _get(api(user), f"/api/v1/submissions/{queued.pk}/?wait=30")
        assert response.status_code == 404, user
        assert took < 1
    assert api(None).get(f"/api/v1/submissions/{queued.pk}/?wait=30").status_code == 401


def test_the_organizer_may_wait_on_a_submission(queued, organizer, api):
    response, _ = _get(api(organizer), f"/api/v1/submissions/{queued.pk}/?wait=0.6")
    assert response["Heldout-Wait"] == "timeout"
