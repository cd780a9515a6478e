"""Writing submissions: accepting an upload, and the organizer's actions on them."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from competitions import rules
from competitions.errors import (
    ApplicationError,
    FinalizedError,
    InvalidState,
    NotJoined,
    PhaseClosed,
    QuotaExceeded,
    TeamBanned,
)
from competitions.files import fsync_stored
from competitions.image_uploads import image_upload_check
from competitions.models import Competition, Phase, Submission, Team
from competitions.selectors import team_quota
from competitions.services.audit import Kind, organizer_action_record
from competitions.services.freeze import competition_require_not_final
from competitions.services.leaderboard import leaderboard_refresh_team
from competitions.services.outbox import enqueue, enqueue_many
from competitions.uploads import upload_sha256

log = logging.getLogger(__name__)
CLOSED_BY_FINALIZE = "The competition is finalized: it no longer takes submissions."
SAFE_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


SCORE_TASK = "scoring.tasks.submission_score_task"


def enqueue_on_commit(submission_id: int) -> None:
    """Queue scoring to the task's queue (its resource class: cpu, gpu, ...) through the
    outbox: the message is written in this transaction and sent once it commits, so the
    worker always finds the row; with the broker down the outbox's sweep sends it within
    seconds of its return (competitions/services/outbox.py)."""
    queue = (
        Submission.objects.filter(pk=submission_id)
        .values_list("competition__task__queue", flat=True)
        .first()
    )
    enqueue(SCORE_TASK, [submission_id], queue=queue or "")


def current_phase(competition: Competition, now: datetime) -> tuple[Phase, bool] | None:
    """The phase a submission made now goes to, and whether it is late."""
    phases = list(competition.phases.all())
    for phase in phases:
        if phase.is_open_at(now):
            return phase, False
    ended = [p for p in phases if p.end_at is not None and p.end_at <= now]
    if ended:
        last = max(ended, key=lambda p: p.end_at or now)
        if last.late_submissions_scored:
            return last, True
    return None


def submission_create(
    *,
    competition: Competition,
    user: User,
    uploaded_file: File,
    method_name: str = "",
    description: str = "",
    paper_url: str = "",
    code_url: str = "",
    hardware_declared: str = "",
) -> Submission:
    """Store the file durably, then record the submission and queue it for scoring.

    `uploaded_file`: a multipart upload (an UploadedFile), or any File whose `name` is the
    participant's file name; one that has `temporary_file_path()` is moved into place, not
    copied, and a `sha256` attribute saves hashing it again (competitions/uploads.py).

    The quota check and the insert happen under a lock on the team's row, so concurrent
    uploads can never exceed the limit between them.
    """
    if competition.is_finalized:  # late submissions too: the freeze wins
        raise FinalizedError(CLOSED_BY_FINALIZE)
    now = timezone.now()
    found = current_phase(competition, now)
    if found is None:
        raise PhaseClosed("No phase of this competition is accepting submissions now.")
    phase, is_late = found
    if phase.task_version is not None and not is_late:
        # Before it is recorded: the phase's submissions are never ranked under other data.
        from competitions.services.phase_versions import phase_version_rank

        phase_version_rank(phase=phase)
        competition.task.refresh_from_db(fields=["version"])
    membership = competition.membership_set.filter(user=user).select_related("team").first()
    if membership is None:
        raise NotJoined("Join the competition (and accept its rules) before submitting.")
    if phase.submission_kind == "container":
        # 400 with every problem of the archive (or of the build context, where allowed).
        bases = settings.HELDOUT_SCORER_IMAGES if phase.allow_build_context else None
        image_upload_check(uploaded_file=uploaded_file, build_bases=bases)
    sha256 = upload_sha256(uploaded_file)

    with transaction.atomic():
        # Again under the lock: a finalize may have committed since the first check.
        competition_require_not_final(competition_id=competition.pk, refusal=CLOSED_BY_FINALIZE)
        team = Team.objects.select_for_update().get(pk=membership.team_id)
        if team.is_banned:
            raise TeamBanned(f"Your team is banned from this competition: {team.banned_reason}")
        _check_quota(team=team, phase=phase, now=now)
        submission = Submission(
            competition=competition,
            phase=phase,
            team=team,
            submitter=user,
            original_name=_safe_name(uploaded_file.name or "predictions.csv"),
            sha256=sha256,
            size=uploaded_file.size or 0,
            method_name=method_name,
            description=description,
            paper_url=paper_url,
            code_url=code_url,
            hardware_declared=hardware_declared,
            kind=phase.submission_kind,
            is_late=is_late,
            task_version=phase.task_version or competition.task.version,
            created_at=now,
            queued_at=now,
        )
        submission.file.save(submission.original_name, uploaded_file, save=False)
        # The row is committed (and the job queued) only after the bytes are durable.
        fsync_stored(submission.file)
        submission.save()
        enqueue_on_commit(submission.pk)
    return submission


def _check_quota(*, team: Team, phase: Phase, now: datetime) -> None:
    quota = team_quota(team=team, phase=phase, now=now)
    if quota.daily_used >= quota.daily_limit:
        raise QuotaExceeded(
            f"Your team has used its {quota.daily_limit} submissions for today (UTC).",
            resets_at=quota.resets_at,
        )
    if quota.invalid_used >= quota.invalid_limit:
        raise QuotaExceeded(
            f"Your team has sent {quota.invalid_used} files that failed validation today; "
            "check your file against the sample submission before trying again.",
            resets_at=quota.resets_at,
        )
    if quota.total_limit is not None and quota.total_used >= quota.total_limit:
        raise QuotaExceeded(
            f"Your team has used all {quota.total_limit} submissions of this phase.",
            resets_at=None,
        )


def _safe_name(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/"))
    cleaned = "".join(ch if ch in SAFE_NAME_CHARS else "_" for ch in base)[:200]
    return cleaned.lstrip(".") or "predictions.csv"


RESCORE_REFUSED = (
    "The competition is finalized: its submissions can't be rescored unless an organizer "
    "reopens it."
)


def submission_rescore(*, submission: Submission, by: User | None = None) -> Submission:
    """Score again under the task's current version; earlier scores are kept."""
    updated = Submission.objects.filter(pk=submission.pk).exclude(
        status__in=[Submission.Status.QUEUED, Submission.Status.RUNNING]
    )
    with transaction.atomic():
        competition_require_not_final(
            competition_id=submission.competition_id,
            refusal=RESCORE_REFUSED,
        )
        count = updated.update(
            status=Submission.Status.QUEUED,
            failure="",
            error_message="",
            queued_at=timezone.now(),
            task_version=submission.competition.task.version,
        )
        if not count:
            raise InvalidState("The submission is already waiting to be scored.")
        organizer_action_record(
            competition_id=submission.competition_id,
            by=by,
            kind=Kind.SUBMISSION_RESCORED,
            target=f"submission #{submission.pk}",
        )
        enqueue_on_commit(submission.pk)
    submission.refresh_from_db()
    return submission


RESCORE_CHUNK = 500


def submissions_rescore_all(
    *, competition: Competition, on_enqueued: Callable[[int], None] | None = None
) -> int:
    """Queue every finished submission of the competition again under the task's current
    version, with one UPDATE; the jobs are sent in chunks once it commits (`on_enqueued`
    is told each chunk's size). Returns how many."""
    now = timezone.now()
    with transaction.atomic():
        competition_require_not_final(
            competition_id=competition.pk,
            refusal=RESCORE_REFUSED,
        )
        Submission.objects.filter(
            competition=competition,
            status__in=[Submission.Status.SCORED, Submission.Status.FAILED],
        ).update(
            status=Submission.Status.QUEUED,
            failure="",
            error_message="",
            queued_at=now,
            task_version=competition.task.version,
        )
        # The rows this UPDATE queued (they carry its time, and stay locked until commit);
        # read back rather than passed as a list, which could exceed SQLite's parameters.
        ids = list(
            Submission.objects.filter(
                competition=competition, status=Submission.Status.QUEUED, queued_at=now
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        queue = competition.task.queue or ""
        for start in range(0, len(ids), RESCORE_CHUNK):
            chunk = ids[start : start + RESCORE_CHUNK]
            enqueue_many(SCORE_TASK, [[pk] for pk in chunk], queue=queue, on_sent=on_enqueued)
    return len(ids)


@transaction.atomic
def submission_set_disqualified(
    *, submission: Submission, disqualified: bool, reason: str = "", by: User | None = None
) -> Submission:
    """Disqualify (with a reason, which the team sees) or rank a submission again; the one
    rule for the API, the organizer pages and the admin's actions."""
    competition_require_not_final(
        competition_id=submission.competition_id,
        refusal="The competition is finalized: disqualifications can't change "
        "unless an organizer reopens it.",
    )
    reason = reason.strip()
    if disqualified and not reason:
        raise ApplicationError(rules.DISQUALIFY_REASON_REQUIRED)
    submission.is_disqualified = disqualified
    submission.disqualified_reason = reason if disqualified else ""
    submission.save(update_fields=["is_disqualified", "disqualified_reason"])
    leaderboard_refresh_team(team=submission.team)
    organizer_action_record(
        competition_id=submission.competition_id,
        by=by,
        kind=Kind.SUBMISSION_DISQUALIFIED if disqualified else Kind.SUBMISSION_REQUALIFIED,
        target=f"submission #{submission.pk} of {submission.team.name}",
        reason=reason,
    )
    return submission


def submission_cancel(*, submission: Submission) -> Submission:
    """Cancel work that has not started; a running or finished submission can't be cancelled."""
    count = Submission.objects.filter(pk=submission.pk, status=Submission.Status.QUEUED).update(
        status=Submission.Status.CANCELLED
    )
    if not count:
        raise InvalidState("Only a queued submission can be cancelled.")
    submission.refresh_from_db()
    return submission


@transaction.atomic
def submission_set_selected(*, submission: Submission, selected: bool) -> Submission:
    """A team picks the submissions that count on the private leaderboard."""
    # The private scores are public once final; choosing after seeing them would pick the winner.
    competition_require_not_final(
        competition_id=submission.competition_id,
        refusal="The competition is finalized; selections can no longer change.",
    )
    if selected and submission.status != Submission.Status.SCORED:
        raise InvalidState("Only a scored submission can be selected.")
    limit = submission.competition.selection_limit
    # Lock the team's row so concurrent selections can't both pass the limit check.
    Team.objects.select_for_update().get(pk=submission.team_id)
    if selected:
        others = Submission.objects.filter(team=submission.team, is_selected=True).exclude(
            pk=submission.pk
        )
        if others.count() >= limit:
            raise InvalidState(
                f"Your team has already selected {limit} submissions; unselect one first."
            )
    submission.is_selected = selected
    submission.save(update_fields=["is_selected"])
    leaderboard_refresh_team(team=submission.team)
    return submission
