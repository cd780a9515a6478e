"""Celery adapters for organizers' background jobs: take the id, call one service."""

from celery import shared_task


@shared_task(acks_late=True)
def organizer_job_task(job_id: int) -> bool:
    from competitions.services.jobs import organizer_job_run

    # A redelivery finds the job claimed and does nothing; failures are recorded on the job.
    return organizer_job_run(job_id=job_id)
