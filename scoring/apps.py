from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"

    def ready(self) -> None:
        from celery.signals import worker_ready, worker_shutdown

        from scoring.signals import (
            sandbox_cleanup_on_worker_ready,
            sandbox_cleanup_on_worker_shutdown,
        )

        # Only `celery worker` sends worker_ready; web processes never clean up.
        worker_ready.connect(sandbox_cleanup_on_worker_ready, dispatch_uid="heldout-cleanup")
        worker_shutdown.connect(
            sandbox_cleanup_on_worker_shutdown, dispatch_uid="heldout-cleanup-stop"
        )
