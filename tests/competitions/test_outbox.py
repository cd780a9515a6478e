"""The transactional outbox (competitions/services/outbox.py): a message exists exactly when
its work committed, is sent at commit when the broker takes it, and otherwise by the sweep;
concurrent senders never publish one message twice."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError as DatabaseOperationalError
from django.db import connection, transaction
from kombu.exceptions import OperationalError

from competitions.models import OutboxMessage, Submission
from competitions.services import outbox
from competitions.services.outbox import enqueue, outbox_purge, outbox_sweep
from competitions.services.submissions import SCORE_TASK, submission_create
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def published(monkeypatch):
    """The messages handed to the broker, in order (`broker.down = True` refuses them)."""

    class Broker:
        down = False
        sent: list[tuple[str, list, str]] = []
        lock = threading.Lock()

    def publish(message: OutboxMessage) -> None:
        if Broker.down:
            raise OperationalError("Error 111 connecting to the broker. Connection refused.")
        time.sleep(0.002)  # room for a concurrent sender to race
        with Broker.lock:
            Broker.sent.append((message.task, message.args, message.queue))

    Broker.sent = []
    monkeypatch.setattr(outbox, "publish", publish)
    return Broker


def test_an_accepted_submissions_message_is_written_with_it_and_sent_at_commit(
    competition, participant, published
):
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    message = OutboxMessage.objects.get()
    assert (message.task, message.args, message.queue) == (SCORE_TASK, [submission.pk], "cpu")
    assert message.sent_at is not None
    assert message.attempts == 1
    assert published.sent == [(SCORE_TASK, [submission.pk], "cpu")]


def test_work_rolled_back_leaves_no_message_and_sends_nothing(published):
    def work() -> None:
        with transaction.atomic():
            enqueue("competitions.tasks.organizer_job_task", [1])
            raise RuntimeError("the work failed")

    with pytest.raises(RuntimeError):
        work()
    assert not OutboxMessage.objects.exists()
    assert published.sent == []


def test_a_message_the_broker_refused_at_commit_is_sent_by_the_next_sweep(
    competition, participant, published
):
    published.down = True
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    assert Submission.objects.get(pk=submission.pk).status == "queued"
    message = OutboxMessage.objects.get()
    assert message.sent_at is None
    assert message.claimed_until is None
    assert "Connection refused" in message.last_error
    assert outbox_sweep() == 0  # still down: nothing sent, nothing lost
    published.down = False
    assert outbox_sweep() == 1
    assert published.sent == [(SCORE_TASK, [submission.pk], "cpu")]
    message.refresh_from_db()
    assert message.sent_at is not None
    assert message.last_error == ""
    assert outbox_sweep() == 0


def test_a_database_fault_after_a_senders_claim_delays_the_message_no_longer_than_a_sweep(
    competition, participant, published
):
    published.down = True
    submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    published.down = False
    claimed: list[str] = []

    def connection_lost_after_the_claim(execute, sql, params, many, context):
        if claimed:
            raise DatabaseOperationalError("server closed the connection unexpectedly")
        if sql.startswith("UPDATE") and "claimed_until" in sql:
            claimed.append(sql)
        return execute(sql, params, many, context)

    with (
        connection.execute_wrapper(connection_lost_after_the_claim),
        pytest.raises(DatabaseOperationalError),
    ):
        outbox_sweep()
    outbox_sweep()

    assert claimed
    # Sent by the sweep the fault interrupted (or the next one), not once the lease ran out.
    assert len(published.sent) == 1


def test_two_concurrent_sweepers_never_send_a_message_twice(published):
    OutboxMessage.objects.bulk_create(
        OutboxMessage(task="competitions.tasks.organizer_job_task", args=[i], queue="cpu")
        for i in range(200)
    )
    start = threading.Barrier(2)
    counts: list[int] = []

    def sweeper() -> None:
        try:
            start.wait()
            counts.append(outbox_sweep())
        finally:
            connection.close()

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent_args = sorted(args[0] for _, args, _ in published.sent)
    assert sent_args == list(range(200))  # each once
    assert sum(counts) == 200
    assert min(counts) > 0
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()


def test_the_purge_forgets_only_messages_sent_long_ago(published):
    sent = enqueue("competitions.tasks.organizer_job_task", [1])
    published.down = True
    unsent = enqueue("competitions.tasks.organizer_job_task", [2])
    assert outbox_purge(older_than_s=3600) == 0
    assert outbox_purge(older_than_s=0) == 1
    assert list(OutboxMessage.objects.values_list("pk", flat=True)) == [unsent.pk]
    assert not OutboxMessage.objects.filter(pk=sent.pk).exists()
