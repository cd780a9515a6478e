"""Celery adapters of the competitions app (scoring's are in scoring/tasks.py)."""

from celery import shared_task


@shared_task
def uploads_expire_task() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE): delete resumable uploads past their expiry."""
    from competitions.services.uploads import uploads_delete_expired

    return uploads_delete_expired()
