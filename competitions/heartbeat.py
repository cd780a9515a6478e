"""Liveness of claimed work: a row (Submission, Replication, OrganizerJob) RUNNING with
`attempts == attempt` belongs to the worker that claimed it.

Contract:
- `claim(model, pk)` moves a QUEUED row to RUNNING with one conditional UPDATE (so a
  redelivered task finds nothing to claim) and returns the claim's attempt number, or None.
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

from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.db.models import F, Model
from django.utils import timezone

log = logging.getLogger(__name__)
RUNNING = "running"
QUEUED = "queued"
# Seconds between the tries of a give-back the database refuses.
GIVE_BACK_DELAYS = (0.0, 0.5, 1.0, 2.0, 4.0)


def claim(model: type[Model], pk: int) -> int | None:
    """Move a queued row (a Submission or Replication) to running on this host. Returns the
    claim's attempt number, which tags every write of this claim, or None if the row is not
    queued (taken, cancelled, finished)."""
    now = timezone.now()
    claimed = model._default_manager.filter(pk=pk, status=QUEUED).update(
        status=RUNNING,
        started_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        worker=socket.gethostname()[:200],
    )
    if claimed != 1:
        return None
    return model._default_manager.values_list("attempts", flat=True).get(pk=pk)


def _beat(model: type[Model], pk: int, attempt: int, stop: threading.Event) -> None:
    try:
        while not stop.wait(settings.HELDOUT_HEARTBEAT_S):
            try:
                alive = model._default_manager.filter(
                    pk=pk, status=RUNNING, attempts=attempt
                ).update(heartbeat_at=timezone.now())
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
            updated = model._default_manager.filter(pk=pk, status=RUNNING, attempts=attempt).update(
                status=QUEUED, queued_at=timezone.now(), heartbeat_at=None
            )
            return bool(updated)
        except DatabaseError as exc:
            log.warning("giving back %s %s failed: %s", model.__name__, pk, exc)
            if not connection.in_atomic_block:
                connection.close()  # the next query opens a fresh connection
    return False
