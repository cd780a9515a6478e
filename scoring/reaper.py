"""The reaper: recover work whose worker died, and resend work whose message was lost.

Sent by celery beat every HELDOUT_REAP_EVERY_S (scoring.tasks, which also reaps organizers' jobs:
competitions.services.jobs.organizer_jobs_reap). For submissions and replications alike:
- RUNNING with a heartbeat older than HELDOUT_RECOVER_AFTER_S: its worker died (a live
  worker beats every HELDOUT_HEARTBEAT_S whatever its time limits). It counts one
  interruption and goes back to the queue, or fails once it was interrupted
  HELDOUT_MAX_ATTEMPTS times; a submission failed so is Failure.PLATFORM, which does not use
  the team's quota.
- QUEUED since longer than HELDOUT_RESEND_AFTER_S: its message is sent again (a duplicate
  is harmless, claiming is conditional).
Every change is a conditional UPDATE on the state read, so a job that beats or finishes
meanwhile is left alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from competitions.models import Replication, Submission
from competitions.services.submissions import enqueue_on_commit


def _dead(queryset: QuerySet, before: datetime) -> QuerySet:
    # Rows claimed before heartbeats existed have none: their start stands for it.
    return queryset.filter(
        Q(heartbeat_at__lt=before) | Q(heartbeat_at__isnull=True, started_at__lt=before),
        status="running",
    )


def _for_enqueue(replications: QuerySet) -> QuerySet:
    # Locked (others skipped) until the update; with what choosing the queue reads.
    return replications.select_related("submission__competition__task").select_for_update(
        skip_locked=True, of=("self",)
    )


def _interrupted_message(kind: str) -> str:
    return (
        f"Scoring was interrupted {settings.HELDOUT_MAX_ATTEMPTS} times (its worker stopped); "
        f"this does not count against the team's quota. An organizer can {kind}."
    )


def submissions_reap(*, now: datetime | None = None) -> dict[str, int]:
    """Requeue submissions whose worker died, fail them after too many interruptions, and
    resend those queued for too long. Returns how many of each."""
    now = now or timezone.now()
    silent = now - timedelta(seconds=settings.HELDOUT_RECOVER_AFTER_S)
    dead = _dead(Submission.objects.all(), silent)
    last_chance = settings.HELDOUT_MAX_ATTEMPTS - 1
    gave_up = dead.filter(interruptions__gte=last_chance).update(
        status=Submission.Status.FAILED,
        failure=Submission.Failure.PLATFORM,
        error_message=_interrupted_message("rescore it"),
        interruptions=F("interruptions") + 1,
        finished_at=now,
    )
    resend_before = now - timedelta(seconds=settings.HELDOUT_RESEND_AFTER_S)
    with transaction.atomic():
        requeue_ids = list(dead.select_for_update(skip_locked=True).values_list("pk", flat=True))
        Submission.objects.filter(pk__in=requeue_ids).update(
            status=Submission.Status.QUEUED,
            queued_at=now,
            heartbeat_at=None,
            interruptions=F("interruptions") + 1,
        )
        lost = Submission.objects.filter(
            status=Submission.Status.QUEUED, queued_at__lt=resend_before
        )
        lost_ids = list(lost.select_for_update(skip_locked=True).values_list("pk", flat=True))
        Submission.objects.filter(pk__in=lost_ids).update(queued_at=now)
        for pk in requeue_ids + lost_ids:
            enqueue_on_commit(pk)
    return {"failed": gave_up, "requeued": len(requeue_ids), "resent": len(lost_ids)}


def replications_reap(*, now: datetime | None = None) -> dict[str, int]:
    """submissions_reap for replications."""
    from scoring.replication import replication_enqueue_on_commit

    now = now or timezone.now()
    silent = now - timedelta(seconds=settings.HELDOUT_RECOVER_AFTER_S)
    dead = _dead(Replication.objects.all(), silent)
    gave_up = dead.filter(interruptions__gte=settings.HELDOUT_MAX_ATTEMPTS - 1).update(
        status=Replication.Status.FAILED,
        error_message=_interrupted_message("ask for it again"),
        interruptions=F("interruptions") + 1,
        finished_at=now,
    )
    resend_before = now - timedelta(seconds=settings.HELDOUT_RESEND_AFTER_S)
    with transaction.atomic():
        requeue = list(_for_enqueue(dead))
        Replication.objects.filter(pk__in=[r.pk for r in requeue]).update(
            status=Replication.Status.QUEUED,
            queued_at=now,
            heartbeat_at=None,
            interruptions=F("interruptions") + 1,
        )
        lost = list(
            _for_enqueue(
                Replication.objects.filter(
                    status=Replication.Status.QUEUED, queued_at__lt=resend_before
                )
            )
        )
        Replication.objects.filter(pk__in=[r.pk for r in lost]).update(queued_at=now)
        for replication in requeue + lost:
            replication_enqueue_on_commit(replication)
    return {"failed": gave_up, "requeued": len(requeue), "resent": len(lost)}
