"""Celery adapters: take ids, call one service, own the retry policy.

The task names are still `scoring.tasks.*` (set explicitly): messages already in queues and
outbox rows, and the beat schedule, name them so.

An infrastructure fault (judging.heartbeat.INFRASTRUCTURE_ERRORS: Docker engine,
database, broker, storage) has already given the work back to the queue, its allowances
untouched; the task retries it with backoff. If the retries run out the work stays queued
and the reaper sends it again after HELDOUT_RESEND_AFTER_S.
"""

from celery import shared_task

from judging.heartbeat import INFRASTRUCTURE_ERRORS


@shared_task(
    name="scoring.tasks.submission_score_task",
    acks_late=True,
    autoretry_for=INFRASTRUCTURE_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=8,
)
def submission_score_task(submission_id: int) -> bool:
    from competitions.ops.logs import log_context
    from judging.services import submission_score

    with log_context(submission=submission_id):
        return submission_score(submission_id=submission_id)


@shared_task(
    name="scoring.tasks.replication_run_task",
    acks_late=True,
    autoretry_for=INFRASTRUCTURE_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=8,
)
def replication_run_task(replication_id: int) -> bool:
    from judging.replication import replication_run

    return replication_run(replication_id=replication_id)


@shared_task(name="scoring.tasks.submissions_reap_task")
def submissions_reap_task() -> dict[str, int]:
    from competitions.services.jobs import organizer_jobs_reap
    from judging.reaper import replications_reap, submissions_reap

    reaped = submissions_reap()
    reaped |= {f"replications_{k}": v for k, v in replications_reap().items()}
    return reaped | {f"jobs_{k}": v for k, v in organizer_jobs_reap().items()}


@shared_task(name="scoring.tasks.images_gc_task")
def images_gc_task() -> int:
    from django.conf import settings

    from judging.images import images_gc, images_to_keep

    return images_gc(keep=images_to_keep(top_n=settings.HELDOUT_IMAGES_KEEP_TOP))


@shared_task(
    name="judging.tasks.references_compute_task",
    acks_late=True,
    autoretry_for=INFRASTRUCTURE_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=8,
)
def references_compute_task(competition_id: int) -> int:
    from judging.references import references_compute

    # Idempotent: a duplicate finds the version's references recorded.
    return references_compute(competition_id=competition_id)
