"""Per-team limits hold under truly concurrent requests.

Twenty threads, each on its own database connection, are released at once by a barrier
against a daily limit of five: exactly five must be accepted and fifteen refused. The
same holds for the selection limit. On PostgreSQL this exercises the row lock on the
team; on SQLite, whose writers are serialised, the same guarantee must hold.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connections

from competitions.errors import QuotaExceeded
from competitions.models import Submission
from competitions.services import outbox
from competitions.services import submissions as submission_services
from competitions.services.submissions import submission_create, submission_set_selected
from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 20
DAILY_LIMIT = 5


def _run_at_once(work) -> list[object]:
    """Run `work(i)` in THREADS threads released together; return each result or exception."""
    barrier = threading.Barrier(THREADS)
    results: list[object] = [None] * THREADS

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # collected and asserted on by the test
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread never finished"
    return results


@pytest.fixture
def broker_messages(monkeypatch):
    """Records the scoring jobs sent after commit, whatever the broker (CI uses Redis).

    The job is recorded where it would be handed to Celery, so no worker picks it up.
    """
    sent_ids: list[int] = []
    lock = threading.Lock()

    def record(message) -> None:
        if message.task == submission_services.SCORE_TASK:
            with lock:
                sent_ids.append(message.args[0])

    monkeypatch.setattr(outbox, "publish", record)
    return lambda: list(sent_ids)


@pytest.fixture
def limited_competition(competition, broker_messages):
    competition.phases.update(daily_limit=DAILY_LIMIT)
    return competition


def test_twenty_concurrent_submissions_against_a_limit_of_five_accept_exactly_five(
    limited_competition, participant, broker_messages
):
    def submit(i: int) -> Submission:
        return submission_create(
            competition=limited_competition,
            user=participant,
            uploaded_file=factories.upload(f"id,label\nid0,{i}\n".encode()),
        )

    results = _run_at_once(submit)

    kinds = Counter(type(r).__name__ for r in results)
    assert kinds == {"Submission": DAILY_LIMIT, "QuotaExceeded": THREADS - DAILY_LIMIT}, results
    assert all(r.resets_at is not None for r in results if isinstance(r, QuotaExceeded))
    assert Submission.objects.count() == DAILY_LIMIT
    accepted = {r.pk for r in results if isinstance(r, Submission)}
    assert set(Submission.objects.values_list("pk", flat=True)) == accepted
    # One scoring job per accepted submission, none for a refused one.
    assert sorted(broker_messages()) == sorted(accepted)


def test_twenty_concurrent_api_uploads_against_a_limit_of_five_give_five_202_and_fifteen_429(
    limited_competition, participant, other_participant, broker_messages
):
    url = f"/api/v1/competitions/{limited_competition.slug}/submissions/"
    client_for(participant)  # create the token before the threads race for it

    def post(i: int) -> tuple[int, str | None]:
        response = client_for(participant).post(
            url, {"file": factories.upload(f"id,label\nid1,{i}\n".encode())}, format="multipart"
        )
        return response.status_code, response.json().get("code")

    results = _run_at_once(post)

    assert Counter(results) == {
        (202, None): DAILY_LIMIT,
        (429, "quota_exceeded"): THREADS - DAILY_LIMIT,
    }, results
    team = participant.teams.get()
    accepted = list(Submission.objects.filter(team=team).values_list("pk", flat=True))
    assert len(accepted) == DAILY_LIMIT
    assert sorted(broker_messages()) == sorted(accepted)
    # The other team's quota is untouched by the race.
    other = client_for(other_participant).post(
        url, {"file": factories.upload(b"id,label\n")}, format="multipart"
    )
    assert other.status_code == 202


def test_concurrent_selections_never_exceed_the_selection_limit(competition, participant):
    assert competition.selection_limit == 2
    team = participant.teams.get()
    submissions = Submission.objects.bulk_create(
        factories.submission_row(team, status=Submission.Status.SCORED) for _ in range(THREADS)
    )
    ids = [s.pk for s in submissions]

    def select(i: int) -> bool:
        submission = Submission.objects.select_related("competition", "team").get(pk=ids[i])
        return submission_set_selected(submission=submission, selected=True).is_selected

    results = _run_at_once(select)

    kinds = Counter(type(r).__name__ for r in results)
    assert kinds == {"bool": 2, "InvalidState": THREADS - 2}, results
    assert Submission.objects.filter(team=team, is_selected=True).count() == 2
