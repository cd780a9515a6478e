"""Celery adapters: take ids, call one service, own the retry policy."""

from celery import shared_task

from scoring.sandbox import SandboxUnavailable


@shared_task(
    acks_late=True,
    autoretry_for=(SandboxUnavailable,),
    retry_backoff=5,
    max_retries=5,
)
def submission_score_task(submission_id: int) -> bool:
    from scoring.services import submission_score

    return submission_score(submission_id=submission_id)


@shared_task(
    acks_late=True,
    autoretry_for=(SandboxUnavailable,),
    retry_backoff=5,
    max_retries=5,
)
def replication_run_task(replication_id: int) -> bool:
    from scoring.replication import replication_run

    return replication_run(replication_id=replication_id)


@shared_task
def submissions_reap_task() -> dict[str, int]:
    from scoring.services import submissions_reap

    return submissions_reap()


@shared_task
def images_gc_task() -> int:
    from django.conf import settings

    from scoring.images import images_gc, images_to_keep

    return images_gc(keep=images_to_keep(top_n=settings.HELDOUT_IMAGES_KEEP_TOP))
