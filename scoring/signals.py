"""Celery signal handlers of the scoring app, connected in scoring.apps."""

from __future__ import annotations

from typing import Any


def sandbox_cleanup_on_worker_ready(**kwargs: Any) -> None:
    """A worker that starts removes the sandbox containers a dead worker left behind."""
    from scoring.services import sandbox_cleanup_stale

    sandbox_cleanup_stale()


def settings_check_on_worker_init(**kwargs: Any) -> None:
    """A worker does not start with settings that contradict each other (scoring.checks)."""
    from django.core.checks import run_checks

    errors = [e for e in run_checks(tags=["heldout"]) if e.is_serious()]
    if errors:
        # SystemExit, not an Exception: Celery logs a handler's exceptions and goes on.
        raise SystemExit("Refusing to start:\n" + "\n".join(str(e) for e in errors))
