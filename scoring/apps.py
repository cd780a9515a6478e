from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"

    def ready(self) -> None:
        from celery.signals import (
            worker_init,
            worker_process_shutdown,
            worker_ready,
            worker_shutdown,
        )

        from scoring import checks  # noqa: F401  (registers the system checks)
        from scoring.signals import (
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
