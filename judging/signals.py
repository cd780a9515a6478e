"""Celery signal handlers of the scoring app, connected in judging.apps."""

from __future__ import annotations

from typing import Any


def sandbox_cleanup_on_worker_ready(**kwargs: Any) -> None:
    """A worker that starts runs its host's clean-up now and every
    HELDOUT_SANDBOX_CLEANUP_EVERY_S seconds (judging.cleanup)."""
    from judging.cleanup import cleanup_timer_start

    cleanup_timer_start()


def sandbox_cleanup_on_worker_shutdown(**kwargs: Any) -> None:
    from judging.cleanup import cleanup_timer_stop

    cleanup_timer_stop()
    warm_scorers_stop()


def warm_scorers_stop(**kwargs: Any) -> None:
    """A worker process that stops removes its warm scorers (scoring.warm); sent in each
    pool process (worker_process_shutdown) and in a solo worker (worker_shutdown)."""
    from competitions.sandboxes import sandbox_runner_close

    sandbox_runner_close()


def settings_check_on_worker_init(**kwargs: Any) -> None:
    """A worker does not start with settings that contradict each other (judging.checks)."""
    from django.core.checks import run_checks

    errors = [e for e in run_checks(tags=["heldout"]) if e.is_serious()]
    if errors:
        # SystemExit, not an Exception: Celery logs a handler's exceptions and goes on.
        raise SystemExit("Refusing to start:\n" + "\n".join(str(e) for e in errors))
