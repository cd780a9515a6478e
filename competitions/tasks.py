"""Celery adapters of the competitions app (scoring's are in judging/tasks.py): take the
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


@shared_task(bind=True, acks_late=True, max_retries=None)
def webhook_deliver_task(self, delivery_id: int) -> None:
    from competitions.services.webhooks import webhook_delivery_attempt

    # The service counts the attempts and gives up after the last one.
    delay = webhook_delivery_attempt(delivery_id=delivery_id)
    if delay is not None:
        raise self.retry(countdown=delay)


@shared_task
def webhook_deliveries_resend_task() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE): re-send deliveries whose message was lost."""
    from competitions.services.webhooks import webhook_deliveries_resend

    return webhook_deliveries_resend()


@shared_task
def outbox_sweep_task() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE, every HELDOUT_OUTBOX_SWEEP_S): send the messages the
    broker did not take when their work was committed."""
    from competitions.services.outbox import outbox_sweep

    return outbox_sweep()


@shared_task
def outbox_purge_task() -> int:
    """Periodic: forget messages sent more than HELDOUT_OUTBOX_KEEP_S ago."""
    from django.conf import settings

    from competitions.services.outbox import outbox_purge

    return outbox_purge(older_than_s=settings.HELDOUT_OUTBOX_KEEP_S)


@shared_task(acks_late=True)
def leaderboard_intervals_task(competition_id: int) -> int:
    from competitions.services.intervals import leaderboard_intervals_refresh

    # Idempotent: a duplicate finds no stale interval and no changed rank.
    return leaderboard_intervals_refresh(competition_id=competition_id)


@shared_task(acks_late=True)
def shakeup_task(competition_id: int) -> int:
    from competitions.services.shakeup import shakeup_compute

    # Idempotent: a duplicate replaces the report with the same rows.
    return shakeup_compute(competition_id=competition_id)


@shared_task
def phase_notices_task() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE): tell members of phases opening and ending soon."""
    from competitions.services.notices import phase_notices_send

    return phase_notices_send()


@shared_task
def phase_versions_task() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE): rank the task version an open phase pins."""
    from competitions.services.phase_versions import phase_versions_rank

    return phase_versions_rank()
