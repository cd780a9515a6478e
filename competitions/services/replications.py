"""Replications asked for and given up by organizers (the run itself is judging.replication).

Contract: replication_request records a queued Replication and enqueues the task
REPLICATION_TASK by name through the transactional outbox, in the caller's transaction; the
domain never imports the worker side. replication_cancel is a conditional UPDATE, so a worker
still running the replication records nothing; it writes the organizer log's line.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from competitions.errors import InvalidState
from competitions.models import OrganizerAction, Replication, Submission
from competitions.selectors_runs import replication_queue, scoring_run_latest
from competitions.services.audit import organizer_action_record
from competitions.services.outbox import enqueue

Status = Replication.Status
# Defined in judging/tasks.py; enqueued by name (its historical name, kept for queued messages).
REPLICATION_TASK = "scoring.tasks.replication_run_task"


def replication_request(
    *, submission: Submission, user: User | None, queue: str = "", tolerance: float = 1e-9
) -> Replication:
    """Queue a replication of a scored container submission. Raises InvalidState when it is
    not one, or when a replication of it is already waiting or running."""
    if submission.kind != "container":
        raise InvalidState("Only container submissions can be replicated.")
    original = None
    if submission.status == Submission.Status.SCORED and submission.task_version is not None:
        original = scoring_run_latest(submission=submission, task_version=submission.task_version)
    if original is None:
        raise InvalidState("The submission has no recorded scoring to compare a replication with.")
    with transaction.atomic():
        Submission.objects.select_for_update().get(pk=submission.pk)
        pending = Replication.objects.filter(
            submission=submission, status__in=[Status.QUEUED, Status.RUNNING]
        )
        if pending.exists():
            raise InvalidState("A replication of this submission is already waiting or running.")
        replication = Replication.objects.create(
            submission=submission,
            requested_by=user,
            queue=queue,
            tolerance=tolerance,
            original_run=original,
        )
        replication_enqueue_on_commit(replication)
    return replication


def replication_enqueue_on_commit(replication: Replication) -> None:
    enqueue(REPLICATION_TASK, [replication.pk], queue=replication_queue(replication))


def replication_cancel(*, replication: Replication, user: User | None) -> Replication:
    """An organizer gives up a queued or running replication: it is no longer required
    to finalize (replications_missing), and records who cancelled it and when. A worker
    still running it records nothing (its writes are conditional on RUNNING). Raises
    InvalidState when it has already ended."""
    now = timezone.now()
    with transaction.atomic():
        _cancel(replication, user, now)
    replication.refresh_from_db()
    return replication


def _cancel(replication: Replication, user: User | None, now: datetime) -> None:
    cancelled = Replication.objects.filter(
        pk=replication.pk, status__in=[Status.QUEUED, Status.RUNNING]
    ).update(
        status=Status.CANCELLED,
        cancelled_at=now,
        cancelled_by=user,
        finished_at=now,
        error_message=f"Cancelled by {user.get_username() if user else 'an organizer'}.",
    )
    if not cancelled:
        raise InvalidState("Only a waiting or running replication can be cancelled.")
    competition_id = Submission.objects.values_list("competition_id", flat=True).get(
        pk=replication.submission_id
    )
    organizer_action_record(
        competition_id=competition_id,
        by=user,
        kind=OrganizerAction.Kind.REPLICATION_CANCELLED,
        target=f"replication of submission #{replication.submission_id}",
    )
