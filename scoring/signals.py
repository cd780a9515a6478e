"""Celery signal handlers of the scoring app, connected in scoring.apps."""

from __future__ import annotations

from typing import Any


def sandbox_cleanup_on_worker_ready(**kwargs: Any) -> None:
    """A worker that starts removes the sandbox containers a dead worker left behind."""
    from scoring.services import sandbox_cleanup_stale

    sandbox_cleanup_stale()
