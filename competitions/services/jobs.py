"""Organizers' long actions as background jobs (OrganizerJob): a scoring program's dry
run, a switch of the ranked version, a rescore of every submission.

Contract: a *_start service checks at once what it can (raising the errors the action
would raise), records a queued job and sends it to a worker once the row is committed.
The worker calls organizer_job_run, which claims the job with a conditional UPDATE (a
redelivered job does nothing), runs the action and records `done` with its result or
`failed` with the action's message (and its details in `result`). Progress is
progress_done of progress_total (teams, or submissions queued).

Crash recovery, as for submissions (competitions.heartbeat, judging.reaper): the running
worker beats; organizer_jobs_reap (sent with the reaper) takes a job whose heartbeat is
HELDOUT_RECOVER_AFTER_S old. A version switch or a rescore-all commits its work and
`result["committed"]` in one transaction, so such a job is either recorded `done` (its
work committed; queued submissions lost with the worker are resent by the submission
reaper) or run again from the start (nothing committed). A dry run changes the scorer only
in its own transaction and publishing the same program makes no version: it runs again.
After HELDOUT_MAX_ATTEMPTS interruptions a job fails with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from competitions.errors import ApplicationError, FinalizedError, InvalidState
from competitions.heartbeat import beating
from competitions.models import (
    Competition,
    OrganizerAction,
    OrganizerJob,
    Submission,
    TaskVersion,
    Team,
)
from competitions.permissions import NotFound
from competitions.services.audit import organizer_action_record
from competitions.services.freeze import VERSION_FROZEN, competition_is_final
from competitions.services.phase_versions import version_switch_refusal
from competitions.services.submissions import RESCORE_REFUSED

log = logging.getLogger(__name__)
Kind = OrganizerJob.Kind
Logged = OrganizerAction.Kind
Status = OrganizerJob.Status
UNFINISHED = [Status.QUEUED, Status.RUNNING]
FINISHED = [Status.DONE, Status.FAILED]


def organizer_job_create(
    *,
    competition: Competition,
    kind: str,
    user: User | None,
    params: dict | None = None,
    total: int = 0,
    file: File | None = None,
) -> OrganizerJob:
    """Record a queued job and send it to a worker once committed."""
    with transaction.atomic():
        job = OrganizerJob(
            competition=competition,
            kind=kind,
            params=params or {},
            progress_total=total,
            created_by=user,
        )
        if file is not None:
            job.file.save(f"{competition.slug}/{file.name}", file, save=False)
        job.full_clean()
        job.save()
        _enqueue_on_commit(job.pk)
    return job


def _enqueue_on_commit(job_id: int) -> None:
    from competitions.services.outbox import enqueue

    enqueue("competitions.tasks.organizer_job_task", [job_id])


def version_switch_start(
    *, competition: Competition, user: User, number: int, rescore: bool = False
) -> OrganizerJob:
    """Switch the ranked version to `number` (with `rescore`: queue everything under it).
    Refused (PhasePinsVersion, naming the phase) while an open phase pins another version."""
    if not TaskVersion.objects.filter(task__competition=competition, number=number).exists():
        raise NotFound(f"Version {number} does not exist.")
    if competition.is_finalized:
        raise FinalizedError(VERSION_FROZEN)
    # An open phase's pin would undo the switch: its pin is what to change (phase_versions).
    version_switch_refusal(competition_id=competition.pk, number=number)
    _refuse_if_busy(competition)
    with transaction.atomic():
        job = organizer_job_create(
            competition=competition,
            kind=Kind.VERSION_SWITCH,
            user=user,
            params={"number": number, "rescore": rescore},
            total=Team.objects.filter(competition=competition).count(),
        )
        organizer_action_record(
            competition_id=competition.pk,
            by=user,
            kind=Logged.VERSION_SWITCH_STARTED,
            target=f"version {number}",
            details={"job": job.pk, "rescore": rescore},
        )
    return job


def rescore_all_start(*, competition: Competition, user: User) -> OrganizerJob:
    """Queue every finished submission to be scored again under the ranked version."""
    if competition_is_final(competition_id=competition.pk):
        # Refused now, not when the job runs, so the organizer reads why at once.
        raise FinalizedError(RESCORE_REFUSED)
    _refuse_if_busy(competition)
    finished = Submission.objects.filter(
        competition=competition, status__in=[Submission.Status.SCORED, Submission.Status.FAILED]
    )
    with transaction.atomic():
        job = organizer_job_create(
            competition=competition, kind=Kind.RESCORE_ALL, user=user, total=finished.count()
        )
        organizer_action_record(
            competition_id=competition.pk,
            by=user,
            kind=Logged.RESCORE_ALL_STARTED,
            target=f"job #{job.pk}",
            details={"submissions": job.progress_total},
        )
    return job


def _refuse_if_busy(competition: Competition) -> None:
    """One switch or rescore at a time: a second would rescore under a version about to go.
    A running job whose heartbeat is HELDOUT_RECOVER_AFTER_S old (its worker died), or a job
    queued for HELDOUT_RESEND_AFTER_S, no longer blocks."""
    now = timezone.now()
    alive = now - timedelta(seconds=settings.HELDOUT_RECOVER_AFTER_S)
    sent = now - timedelta(seconds=settings.HELDOUT_RESEND_AFTER_S)
    busy = (
        OrganizerJob.objects.filter(
            competition=competition,
            kind__in=[Kind.VERSION_SWITCH, Kind.RESCORE_ALL],
        )
        .filter(
            Q(status=Status.QUEUED, queued_at__gte=sent)
            | Q(status=Status.RUNNING, heartbeat_at__gte=alive)
            | Q(status=Status.RUNNING, heartbeat_at__isnull=True, started_at__gte=alive)
        )
        .first()
    )
    if busy is not None:
        raise InvalidState(
            f"{busy.get_kind_display()} #{busy.pk} is {busy.status}; wait until it is done.",
            extra={"job": busy.pk},
        )


def organizer_job_run(*, job_id: int, runner: object | None = None) -> bool:
    """Claim and run the job; False if another delivery claimed it already. `runner` (a
    SandboxRunner) is for tests of the dry run."""
    now = timezone.now()
    claimed = OrganizerJob.objects.filter(pk=job_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return False
    job = OrganizerJob.objects.select_related("competition__task").get(pk=job_id)
    try:
        with beating(OrganizerJob, job.pk, job.attempts):
            result = _HANDLERS[job.kind](job, runner)
    except ApplicationError as exc:
        _finish(job, Status.FAILED, exc.message, {"code": exc.code, **exc.extra})
    except NotFound as exc:
        _finish(job, Status.FAILED, str(exc), {"code": "not_found"})
    except Exception:
        log.exception("organizer job %s failed", job_id)
        _finish(job, Status.FAILED, "The job failed unexpectedly; the workers' log says why.", {})
    else:
        _finish(job, Status.DONE, "", result)
    finally:
        # Kept while the job may still run: the reaper may have sent it again meanwhile.
        if job.file and OrganizerJob.objects.filter(pk=job_id, status__in=FINISHED).exists():
            _drop_file(job)
    return True


def _drop_file(job: OrganizerJob) -> None:
    job.file.delete(save=False)
    OrganizerJob.objects.filter(pk=job.pk).update(file="")


def _finish(job: OrganizerJob, status: str, message: str, result: dict) -> None:
    fields: dict = {"status": status, "message": message, "result": result}
    fields["finished_at"] = timezone.now()
    if status == Status.DONE:
        fields["progress_done"] = F("progress_total")
    # Only this claim: a job the reaper took back is the next attempt's to finish.
    OrganizerJob.objects.filter(pk=job.pk, status=Status.RUNNING, attempts=job.attempts).update(
        **fields
    )


def _committed(job: OrganizerJob, result: dict) -> None:
    """Record, in the action's own transaction, that its work is committed."""
    OrganizerJob.objects.filter(pk=job.pk).update(result={**result, "committed": True})


def organizer_jobs_reap(*, now: datetime | None = None) -> dict[str, int]:
    """Recover the jobs whose worker stopped beating (module docstring), and send again
    those queued for HELDOUT_RESEND_AFTER_S (their message may be lost; claiming is
    conditional, so a duplicate does nothing). Returns how many were recorded done, run
    again, failed and resent."""
    now = now or timezone.now()
    silent = now - timedelta(seconds=settings.HELDOUT_RECOVER_AFTER_S)
    dead = OrganizerJob.objects.filter(
        Q(heartbeat_at__lt=silent) | Q(heartbeat_at__isnull=True, started_at__lt=silent),
        status=Status.RUNNING,
    )
    done = dead.filter(result__has_key="committed").update(
        status=Status.DONE, finished_at=now, progress_done=F("progress_total")
    )
    uncommitted = dead.exclude(result__has_key="committed")
    failed = _give_up(uncommitted, now)
    resend_before = now - timedelta(seconds=settings.HELDOUT_RESEND_AFTER_S)
    with transaction.atomic():
        again = list(_locked(uncommitted).values_list("pk", flat=True))
        OrganizerJob.objects.filter(pk__in=again).update(
            status=Status.QUEUED,
            queued_at=now,
            heartbeat_at=None,
            progress_done=0,
            interruptions=F("interruptions") + 1,
        )
        lost = OrganizerJob.objects.filter(status=Status.QUEUED, queued_at__lt=resend_before)
        resent = list(_locked(lost).values_list("pk", flat=True))
        OrganizerJob.objects.filter(pk__in=resent).update(queued_at=now)
        for pk in again + resent:
            _enqueue_on_commit(pk)
    return {"done": done, "requeued": len(again), "failed": failed, "resent": len(resent)}


def _give_up(dead: QuerySet, now: datetime) -> int:
    """Fail the dead jobs interrupted HELDOUT_MAX_ATTEMPTS times; their work never committed."""
    failed = 0
    for job in dead.filter(interruptions__gte=settings.HELDOUT_MAX_ATTEMPTS - 1):
        # One by one (a few at most), each conditional on still being dead.
        if dead.filter(pk=job.pk).update(
            status=Status.FAILED,
            message=(
                f"Its worker stopped {settings.HELDOUT_MAX_ATTEMPTS} times before it was done; "
                "nothing was changed. Start it again."
            ),
            interruptions=F("interruptions") + 1,
            finished_at=now,
        ):
            failed += 1
            if job.file:
                _drop_file(job)  # the program a dry run never finished with
    return failed


def _locked(jobs: QuerySet) -> QuerySet:
    return jobs.select_for_update(skip_locked=True)


def _progress(job: OrganizerJob) -> Callable[[int], None]:
    def advance(count: int) -> None:
        OrganizerJob.objects.filter(pk=job.pk).update(progress_done=F("progress_done") + count)

    return advance


def _run_version_switch(job: OrganizerJob, runner: object | None) -> dict:
    from competitions.services.versions import task_version_activate

    number, rescore = int(job.params["number"]), bool(job.params.get("rescore"))
    task = job.competition.task
    with transaction.atomic():
        # A phase may have been pinned, or opened, since the switch was asked for.
        version_switch_refusal(competition_id=job.competition_id, number=number)
        task_version_activate(task=task, number=number, rescore=rescore)
        queued = (
            Submission.objects.filter(
                competition=job.competition, status=Submission.Status.QUEUED, task_version=number
            ).count()
            if rescore
            else 0
        )
        result = {"number": number, "rescore": rescore, "queued": queued}
        _committed(job, result)
    return result


def _run_rescore_all(job: OrganizerJob, runner: object | None) -> dict:
    from competitions.services.submissions import submissions_rescore_all

    with transaction.atomic():
        # The jobs are sent, and progress counted, once this commits.
        count = submissions_rescore_all(competition=job.competition, on_enqueued=_progress(job))
        OrganizerJob.objects.filter(pk=job.pk).update(progress_total=count)
        _committed(job, {"queued": count})
    return {"queued": count}


def _run_dry_run(job: OrganizerJob, runner: object | None) -> dict:
    from competitions.services.scorers import task_scorer_dry_run

    return {"dry_run": task_scorer_dry_run(job=job, runner=runner)}  # type: ignore[arg-type]


_HANDLERS: dict[str, Callable[[OrganizerJob, object | None], dict]] = {
    Kind.VERSION_SWITCH: _run_version_switch,
    Kind.RESCORE_ALL: _run_rescore_all,
    Kind.DRY_RUN: _run_dry_run,
}
