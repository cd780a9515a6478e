"""Celery signal handlers of the scoring app, connected in scoring.apps."""

from __future__ import annotations

from typing import Any


def sandbox_cleanup_on_worker_ready(**kwargs: Any) -> None:
    """A worker that starts runs its host's clean-up now and every
    HELDOUT_SANDBOX_CLEANUP_EVERY_S seconds (scoring.cleanup)."""
    from scoring.cleanup import cleanup_timer_start

    cleanup_timer_start()


def sandbox_cleanup_on_worker_shutdown(**kwargs: Any) -> None:
    from scoring.cleanup import cleanup_timer_stop

    cleanup_timer_stop()
