"""Celery adapters of the competitions app (scoring's are in scoring/tasks.py): take the
id, call one service."""

from celery import shared_task


@shared_task
def uploads_expire_task() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE): delete resumable uploads past their expiry."""
    from competitions.services.uploads import uploads_delete_expired

    return uploads_delete_expired()


@shared_task(acks_late=True)
def organizer_job_task(job_id: int) -> bool:
    from competitions.services.jobs import organizer_job_run

    # A redelivery finds the job claimed and does nothing; failures are recorded on the job.
    return organizer_job_run(job_id=job_id)
