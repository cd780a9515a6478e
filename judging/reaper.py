"""The reaper: recover work whose worker died, and resend work whose message was lost.

Sent by celery beat every HELDOUT_REAP_EVERY_S (judging.tasks, which also reaps organizers' jobs:
competitions.services.jobs.organizer_jobs_reap). For submissions and replications alike:
- RUNNING with a heartbeat older than HELDOUT_RECOVER_AFTER_S: its worker died (a live
  worker beats every HELDOUT_HEARTBEAT_S whatever its time limits). It counts one
  interruption and goes back to the queue, or fails once it was interrupted
  HELDOUT_MAX_ATTEMPTS times; a submission failed so is Failure.PLATFORM, which does not use
  the team's quota. A submission's claim is its RUNNING Attempt (runs.Attempt, read through
  the partial index attempt_running_heartbeat): the attempt becomes INTERRUPTED, or FAILED
  when it is the one that fails the submission; its interruptions are the INTERRUPTED
  attempts since its latest SCORED or FAILED one (a rescore starts after one of those).
- QUEUED since longer than HELDOUT_RESEND_AFTER_S: its message is sent again (a duplicate
  is harmless, claiming is conditional).
Every change is a conditional UPDATE on the state read, so a job that beats or finishes
meanwhile is left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q, QuerySet
from django.utils import timezone

from competitions.models import Attempt, Replication, Submission
from competitions.services.replications import replication_enqueue_on_commit
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


def _reap(
    model: type[Replication],
    *,
    now: datetime,
    failed_fields: dict[str, Any],
    lock: Callable[[QuerySet], QuerySet],
    enqueue: Callable[[Any], None],
) -> dict[str, int]:
    """The reap of the module docstring for a model claimed in its own row (replications):
    `failed_fields` are also set on those that fail, `lock` selects rows for update (skipping locked ones), `enqueue` sends a row."""
    silent = now - timedelta(seconds=settings.HELDOUT_RECOVER_AFTER_S)
    dead = _dead(model.objects.all(), silent)
    gave_up = dead.filter(interruptions__gte=settings.HELDOUT_MAX_ATTEMPTS - 1).update(
        status=model.Status.FAILED,
        interruptions=F("interruptions") + 1,
        finished_at=now,
        **failed_fields,
    )
    resend_before = now - timedelta(seconds=settings.HELDOUT_RESEND_AFTER_S)
    with transaction.atomic():
        requeue = list(lock(dead))
        model.objects.filter(pk__in=[row.pk for row in requeue]).update(
            status=model.Status.QUEUED,
            queued_at=now,
            heartbeat_at=None,
            interruptions=F("interruptions") + 1,
        )
        queued = model.objects.filter(status=model.Status.QUEUED, queued_at__lt=resend_before)
        lost = list(lock(queued))
        model.objects.filter(pk__in=[row.pk for row in lost]).update(queued_at=now)
        for row in requeue + lost:
            enqueue(row)
    return {"failed": gave_up, "requeued": len(requeue), "resent": len(lost)}


def submissions_reap(*, now: datetime | None = None) -> dict[str, int]:
    """Requeue submissions whose worker died, fail them after too many interruptions, and
    resend those queued for too long. Returns how many of each."""
    now = now or timezone.now()
    silent = now - timedelta(seconds=settings.HELDOUT_RECOVER_AFTER_S)
    resend_before = now - timedelta(seconds=settings.HELDOUT_RESEND_AFTER_S)
    with transaction.atomic():
        # Locked (a worker ending its attempt holds it: skipped, and its end stands).
        dead = dict(
            Attempt.objects.filter(outcome=Attempt.Outcome.RUNNING, heartbeat_at__lt=silent)
            .select_for_update(skip_locked=True)
            .values_list("pk", "submission_id")
        )
        before = _interruptions(list(dead.values()))
        last = {pk for pk, sub in dead.items() if before[sub] >= settings.HELDOUT_MAX_ATTEMPTS - 1}
        Attempt.objects.filter(pk__in=last).update(outcome=Attempt.Outcome.FAILED, finished_at=now)
        Attempt.objects.filter(pk__in=set(dead) - last).update(
            outcome=Attempt.Outcome.INTERRUPTED, finished_at=now
        )
        failed = Submission.objects.filter(
            pk__in=[dead[pk] for pk in last], status=Submission.Status.RUNNING
        ).update(
            status=Submission.Status.FAILED,
            failure=Submission.Failure.PLATFORM,
            error_message=_interrupted_message("rescore it"),
        )
        back = [sub for pk, sub in dead.items() if pk not in last]
        # Not skipped when locked: an attempt ended here must not leave its submission
        # RUNNING with nothing to reap.
        requeue = list(
            Submission.objects.filter(pk__in=back, status=Submission.Status.RUNNING)
            .select_for_update()
            .values_list("pk", flat=True)
        )
        queued = Submission.objects.filter(
            status=Submission.Status.QUEUED, queued_at__lt=resend_before
        )
        lost = list(queued.select_for_update(skip_locked=True).values_list("pk", flat=True))
        Submission.objects.filter(pk__in=requeue).update(
            status=Submission.Status.QUEUED, queued_at=now
        )
        Submission.objects.filter(pk__in=lost).update(queued_at=now)
        for pk in requeue + lost:
            enqueue_on_commit(pk)
    return {"failed": failed, "requeued": len(requeue), "resent": len(lost)}


def _interruptions(submission_ids: list[int]) -> dict[int, int]:
    """How many times each submission's current scoring was interrupted so far: its
    INTERRUPTED attempts after its latest SCORED or FAILED one."""
    ended = dict(
        Attempt.objects.filter(
            submission_id__in=submission_ids,
            outcome__in=[Attempt.Outcome.SCORED, Attempt.Outcome.FAILED],
        )
        .values("submission_id")
        .annotate(last=Max("number"))
        .values_list("submission_id", "last")
    )
    counts = dict.fromkeys(submission_ids, 0)
    interrupted = Attempt.objects.filter(
        submission_id__in=submission_ids, outcome=Attempt.Outcome.INTERRUPTED
    ).values_list("submission_id", "number")
    for submission_id, number in interrupted:
        if number > ended.get(submission_id, 0):
            counts[submission_id] += 1
    return counts


def replications_reap(*, now: datetime | None = None) -> dict[str, int]:
    """submissions_reap for replications."""
    return _reap(
        Replication,
        now=now or timezone.now(),
        failed_fields={"error_message": _interrupted_message("ask for it again")},
        lock=_for_enqueue,
        enqueue=replication_enqueue_on_commit,
    )
