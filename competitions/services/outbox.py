"""The one port through which the domain reaches the queue: `enqueue` a Celery task by name.

Contract: `enqueue` writes an OutboxMessage in the caller's transaction, so the message
exists if and only if the work it announces was committed. Once that transaction commits the
message is sent at once (`outbox_send`); if the broker is down it stays unsent and the
periodic sweep (`outbox_sweep`, every HELDOUT_OUTBOX_SWEEP_S) sends it once the broker is
back. A sender claims a row with a conditional UPDATE (a lease of OUTBOX_LEASE_S), so two
senders never publish one row; a duplicate message would be harmless anyway, since every
task claims its work with a conditional UPDATE.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from competitions.models import OutboxMessage

log = logging.getLogger(__name__)
# Longer than any publish (kombu gives up within seconds), shorter than a sweep's patience.
OUTBOX_LEASE_S = 60
SWEEP_BATCH = 500


def enqueue(
    task: str,
    args: Sequence[object],
    *,
    queue: str = "",
    countdown: int | None = None,
    on_sent: Callable[[], None] | None = None,
) -> OutboxMessage:
    """Record the message `task(*args)` for `queue` (default: CELERY_TASK_DEFAULT_QUEUE) and
    send it once the current transaction commits (at once outside one)."""
    message = OutboxMessage.objects.create(
        task=task,
        args=list(args),
        queue=queue or settings.CELERY_TASK_DEFAULT_QUEUE,
        countdown=countdown,
    )
    _send_on_commit([message.pk], on_sent=on_sent)
    return message


def enqueue_many(
    task: str,
    args_list: Sequence[Sequence[object]],
    *,
    queue: str = "",
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """`enqueue` for many messages of one task, written with one INSERT; `on_sent` is told
    how many of them were sent right after the commit."""
    rows = OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                task=task, args=list(args), queue=queue or settings.CELERY_TASK_DEFAULT_QUEUE
            )
            for args in args_list
        ]
    )
    ids = [row.pk for row in rows]

    def send_all() -> None:  # named: Django logs a robust callback's __qualname__
        sent = sum(outbox_send(message_id=pk) for pk in ids)
        if on_sent is not None:
            on_sent(sent)

    transaction.on_commit(send_all, robust=True)
    return len(ids)


def _send_on_commit(ids: list[int], on_sent: Callable[[], None] | None) -> None:
    def send_outbox() -> None:  # named: Django logs a robust callback's __qualname__
        if all(outbox_send(message_id=pk) for pk in ids) and on_sent is not None:
            on_sent()

    transaction.on_commit(send_outbox, robust=True)


def _claim(message_id: int) -> bool:
    now = timezone.now()
    return bool(
        OutboxMessage.objects.filter(pk=message_id, sent_at__isnull=True)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + timedelta(seconds=OUTBOX_LEASE_S), attempts=F("attempts") + 1)
    )


def publish(message: OutboxMessage) -> None:
    """Hand one message to the broker (raises if it is unreachable)."""
    from config.celery_app import app

    options: dict[str, object] = {"queue": message.queue}
    if message.countdown is not None:
        options["countdown"] = message.countdown
    # Through the registered task when this process knows it (its options); by name
    # otherwise: the domain never imports the worker's modules.
    task = app.tasks.get(message.task)
    if task is not None:
        task.apply_async(args=message.args, **options)
    else:
        app.send_task(message.task, args=message.args, **options)


def outbox_send(*, message_id: int) -> bool:
    """Claim and send one unsent message. Returns whether this call sent it.

    Read before it is claimed: a database fault after the claim would leave the message
    claimed, and so unsent, until its lease ran out (OUTBOX_LEASE_S), not until the next
    sweep."""
    message = OutboxMessage.objects.filter(pk=message_id, sent_at__isnull=True).first()
    if message is None or not _claim(message_id):
        return False
    try:
        publish(message)
    except Exception as exc:  # the broker's errors are many (kombu, redis, amqp, OSError)
        OutboxMessage.objects.filter(pk=message_id).update(
            claimed_until=None, last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        log.warning("outbox message %s not sent (%s); the sweep will retry", message_id, exc)
        return False
    OutboxMessage.objects.filter(pk=message_id).update(sent_at=timezone.now(), last_error="")
    return True


def outbox_sweep(*, limit: int = SWEEP_BATCH) -> int:
    """Send the unsent messages, oldest first, stopping at the first failure (the broker is
    still down). Returns how many this call sent."""
    now = timezone.now()
    ids = list(
        OutboxMessage.objects.filter(sent_at__isnull=True)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for pk in ids:
        if outbox_send(message_id=pk):
            sent += 1
        elif OutboxMessage.objects.filter(
            pk=pk, sent_at__isnull=True, claimed_until__isnull=True
        ).exists():
            break  # this send failed: the broker is down, the rest would fail too
    return sent


def outbox_purge(*, older_than_s: float) -> int:
    """Delete sent messages older than `older_than_s` (the outbox is not an archive)."""
    before = timezone.now() - timedelta(seconds=older_than_s)
    deleted, _ = OutboxMessage.objects.filter(sent_at__lt=before).delete()
    return deleted
