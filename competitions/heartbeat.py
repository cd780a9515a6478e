"""Liveness of claimed work. A Replication or OrganizerJob RUNNING with `attempts == attempt`
belongs to the worker that claimed it; a submission's claim is its Attempt row (runs.Attempt)
with that number, while its outcome is RUNNING (`held` names either).

Contract:
- `claim(model, pk)` moves a QUEUED row to RUNNING with one conditional UPDATE (so a
  redelivered task finds nothing to claim) and returns the claim's attempt number, or None.
  A submission's claim also inserts its Attempt row, in the same transaction as that
  UPDATE (which holds the submission's row lock until it commits); the attempt's uniqueness
  constraints (one number, one RUNNING attempt per submission) stand behind it.
- `submission_claim_end` ends a submission's claim (the attempt's outcome and results, the
  submission's status and outcome) with one conditional UPDATE of each, in one
  transaction: False, and nothing written, when the claim was no longer held. An outcome
  (scored or failed) sends competitions.signals.submission_finished in that transaction.
- `beating(model, pk, attempt)` wraps the work of one claim. A daemon thread writes
  `heartbeat_at = now` every HELDOUT_HEARTBEAT_S through its own database connection, which
  it closes when the block ends. It writes only while the row is still RUNNING with that
  attempt, so a beat never revives work the reaper or an organizer took back. The reapers
  (judging.reaper, competitions.services.jobs.organizer_jobs_reap) requeue running work whose
  heartbeat is older than HELDOUT_RECOVER_AFTER_S: a live job is never requeued, whatever its
  stages' time limits add up to.
- `give_back` returns a claim to the queue without touching any allowance, after a fault of
  the platform (judging.heartbeat.INFRASTRUCTURE_ERRORS). A give-back the database refuses
  (it is down) is retried for a few seconds; past that the heartbeat is stale and the reaper
  recovers it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import F, Max, Model, QuerySet
from django.utils import timezone

from competitions.models import Attempt, Submission
from competitions.signals import submission_finished

log = logging.getLogger(__name__)
RUNNING = "running"
QUEUED = "queued"
FINISHED = (Submission.Status.SCORED, Submission.Status.FAILED)
# Seconds between the tries of a give-back the database refuses.
GIVE_BACK_DELAYS = (0.0, 0.5, 1.0, 2.0, 4.0)


def held(model: type[Model], pk: int, attempt: int) -> QuerySet:
    """The row that claim `attempt` of `model` row `pk` still holds (empty once it does
    not): a submission's RUNNING Attempt, or the RUNNING row itself."""
    if model is Submission:
        return Attempt.objects.filter(
            submission_id=pk, number=attempt, outcome=Attempt.Outcome.RUNNING
        )
    return model._default_manager.filter(pk=pk, status=RUNNING, attempts=attempt)


def claim(model: type[Model], pk: int) -> int | None:
    """Move a queued row (a Submission or Replication) to running on this host. Returns the
    claim's attempt number, which tags every write of this claim, or None if the row is not
    queued (taken, cancelled, finished)."""
    now = timezone.now()
    worker = socket.gethostname()[:200]
    if model is Submission:
        return _claim_submission(pk, now, worker)
    claimed = model._default_manager.filter(pk=pk, status=QUEUED).update(
        status=RUNNING,
        started_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        worker=worker,
    )
    if claimed != 1:
        return None
    return model._default_manager.values_list("attempts", flat=True).get(pk=pk)


def _claim_submission(pk: int, now: datetime, worker: str) -> int | None:
    with transaction.atomic():
        if not Submission.objects.filter(pk=pk, status=QUEUED).update(status=RUNNING):
            return None
        queued_at = Submission.objects.values_list("queued_at", flat=True).get(pk=pk)
        last = Attempt.objects.filter(submission_id=pk).aggregate(n=Max("number"))["n"]
        attempt = Attempt.objects.create(
            submission_id=pk,
            number=(last or 0) + 1,
            worker=worker,
            queued_at=queued_at,
            started_at=now,
            heartbeat_at=now,
        )
    return attempt.number


def submission_claim_end(
    *,
    submission_id: int,
    attempt: int,
    outcome: str,
    attempt_fields: dict[str, Any] | None = None,
    submission_fields: dict[str, Any],
) -> bool:
    """End claim `attempt` of a submission: the attempt gets `outcome`, its finish time and
    `attempt_fields`; the submission (still RUNNING) `submission_fields`. Whether the claim
    was still held; if not, nothing is written. Joins the caller's transaction if any."""
    now = timezone.now()
    fields = {"finished_at": now} | (attempt_fields or {})
    with transaction.atomic():
        if not held(Submission, submission_id, attempt).update(outcome=outcome, **fields):
            return False
        moved = Submission.objects.filter(pk=submission_id, status=RUNNING).update(
            **submission_fields
        )
        if not moved:  # not ours after all (an organizer's change): write nothing
            transaction.set_rollback(True)
            return False
        if submission_fields.get("status") in FINISHED:
            submission_finished.send(sender=Submission, submission_id=submission_id)
    return True


def _beat(model: type[Model], pk: int, attempt: int, stop: threading.Event) -> None:
    try:
        while not stop.wait(settings.HELDOUT_HEARTBEAT_S):
            try:
                alive = held(model, pk, attempt).update(heartbeat_at=timezone.now())
            except DatabaseError as exc:
                # The database may come back; the next beat tries again on a new connection.
                log.warning("heartbeat of %s %s failed: %s", model.__name__, pk, exc)
                connection.close()
                continue
            if not alive:
                return  # taken back (reaped, cancelled): nothing left to keep alive
    finally:
        connections.close_all()  # this thread's own connections


@contextmanager
def beating(model: type[Model], pk: int, attempt: int) -> Iterator[None]:
    """Keep the claim `attempt` of `model` row `pk` alive while the block runs."""
    stop = threading.Event()
    thread = threading.Thread(
        target=_beat,
        args=(model, pk, attempt, stop),
        name=f"heartbeat-{model.__name__.lower()}-{pk}",
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def give_back(model: type[Model], pk: int, attempt: int) -> bool:
    """Return a claim to the queue after an infrastructure fault, its allowances untouched.

    Returns whether the row was given back (False: it was no longer ours, or the database
    stayed unreachable, in which case the reaper recovers it).
    """
    for delay in GIVE_BACK_DELAYS:
        time.sleep(delay)
        try:
            return _give_back(model, pk, attempt)
        except DatabaseError as exc:
            log.warning("giving back %s %s failed: %s", model.__name__, pk, exc)
            if not connection.in_atomic_block:
                connection.close()  # the next query opens a fresh connection
    return False


def _give_back(model: type[Model], pk: int, attempt: int) -> bool:
    now = timezone.now()
    if model is Submission:
        return submission_claim_end(
            submission_id=pk,
            attempt=attempt,
            outcome=Attempt.Outcome.RETURNED,
            submission_fields={"status": QUEUED, "queued_at": now},
        )
    updated = held(model, pk, attempt).update(status=QUEUED, queued_at=now, heartbeat_at=None)
    return bool(updated)
