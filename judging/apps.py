from django.apps import AppConfig


class JudgingConfig(AppConfig):
    """Runs submissions through scorers on Celery workers: the Django side of scoring/."""

    name = "judging"

    def ready(self) -> None:
        from celery.signals import (
            worker_init,
            worker_process_shutdown,
            worker_ready,
            worker_shutdown,
        )

        from judging import checks  # noqa: F401  (registers the system checks)
        from judging.signals import (
            sandbox_cleanup_on_worker_ready,
            sandbox_cleanup_on_worker_shutdown,
            settings_check_on_worker_init,
            warm_scorers_stop,
        )

        # Only `celery worker` sends worker_ready; web processes never clean up.
        worker_ready.connect(sandbox_cleanup_on_worker_ready, dispatch_uid="heldout-cleanup")
        worker_shutdown.connect(
            sandbox_cleanup_on_worker_shutdown, dispatch_uid="heldout-cleanup-stop"
        )
        worker_process_shutdown.connect(warm_scorers_stop, dispatch_uid="heldout-warm-stop")
        # A worker refuses to start with contradictory settings, as migrate does.
        worker_init.connect(settings_check_on_worker_init, dispatch_uid="heldout-checks")
