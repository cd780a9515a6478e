"""Long-polling a submission's outcome: `GET /api/v1/submissions/<id>/?wait=N`.

The request's thread polls the submission's status, one cheap indexed query every
POLL_S seconds and no transaction held in between, until the status is terminal or N
seconds (at most WAIT_MAX_S) have passed. A gthread web process has few threads
(config/gunicorn.py: 8), so at most HELDOUT_WAITS_PER_PROCESS waits run in a process at
once: a wait beyond them is answered at once, as "busy", and the client polls again.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings

from competitions.models import Submission

POLL_S = 0.5
WAIT_MAX_S = 60.0
TERMINAL = frozenset(
    {Submission.Status.SCORED, Submission.Status.FAILED, Submission.Status.CANCELLED}
)
FINISHED, TIMEOUT, BUSY = "finished", "timeout", "busy"

_slots: threading.BoundedSemaphore | None = None
_slots_lock = threading.Lock()


def wait_slots() -> threading.BoundedSemaphore:
    """This process's wait slots (HELDOUT_WAITS_PER_PROCESS, read on first use)."""
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(max(settings.HELDOUT_WAITS_PER_PROCESS, 0))
        return _slots


def submission_wait(*, submission_id: int, seconds: float) -> str:
    """Wait for the submission's outcome: FINISHED (terminal now, or gone), TIMEOUT after
    `seconds` (capped at WAIT_MAX_S), or BUSY at once when every slot is taken."""
    slots = wait_slots()
    if not slots.acquire(blocking=False):
        return BUSY
    try:
        deadline = time.monotonic() + min(max(seconds, 0.0), WAIT_MAX_S)
        while True:
            status = (
                Submission.objects.filter(pk=submission_id).values_list("status", flat=True).first()
            )
            if status is None or status in TERMINAL:
                return FINISHED
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return TIMEOUT
            time.sleep(min(POLL_S, remaining))
    finally:
        slots.release()
