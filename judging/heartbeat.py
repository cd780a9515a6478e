"""What to do when the platform, not the work, fails (the liveness of claims, `beating` and
`give_back`, is competitions.heartbeat).

Contract:
- INFRASTRUCTURE_ERRORS are faults of the platform (Docker engine, database, broker,
  storage). `give_back` (competitions.heartbeat) returns a claim to the queue without touching any allowance; the
  Celery task then retries with backoff. A give-back the database refuses (it is down) is
  retried for a few seconds; past that the heartbeat is stale and the reaper recovers it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from competitions.files import STORAGE_ERRORS
from scoring.sandbox import SandboxUnavailable


class StorageUnavailable(Exception):
    """The platform's file storage failed (reading the ground truth, writing results)."""


# Not the work's fault: retried, never counted against it.
INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (
    SandboxUnavailable,
    StorageUnavailable,
    OperationalError,
    InterfaceError,
    BrokerError,
)


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Report a failure of the platform's storage (an OSError, or an object store's
    client error) as StorageUnavailable (retried)."""
    try:
        yield
    except STORAGE_ERRORS as exc:
        raise StorageUnavailable(f"storage failed {what}: {exc}") from exc
