"""Reads of the scoring runs (ScoringRun rows, written by judging.manifest: which manifest
stands behind a submission's scores) and of replications (what finalizing waits for)."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from competitions.models import Competition, LeaderboardEntry, Replication, ScoringRun, Submission

Status = Replication.Status


def scoring_run_latest(*, submission: Submission, task_version: int) -> ScoringRun | None:
    """The manifest behind the submission's scores under `task_version`: its latest scoring
    (replications write their own runs, which never replace it)."""
    runs = ScoringRun.objects.filter(submission=submission, task_version=task_version)
    for run in runs.order_by("-created_at", "-pk"):
        if run.manifest.get("kind", "scoring") == "scoring":
            return run
    return None


def scoring_run_for_claim(
    *, submission: Submission, ranked: int, wanted: int | None = None
) -> ScoringRun | None:
    """The scoring a claim shows: under `wanted` if given (None if there is none), else
    under the ranked version, else the latest one (a superseded claim keeps its scores)."""
    if wanted is not None:
        return scoring_run_latest(submission=submission, task_version=wanted)
    run = scoring_run_latest(submission=submission, task_version=ranked)
    if run is not None:
        return run
    runs = ScoringRun.objects.filter(submission=submission).order_by("-created_at", "-pk")
    return next((r for r in runs if r.manifest.get("kind", "scoring") == "scoring"), None)


def replication_queue(replication: Replication) -> str:
    """The worker queue a replication is sent to."""
    task = replication.submission.competition.task
    return replication.queue or task.queue or settings.CELERY_TASK_DEFAULT_QUEUE


def replications_missing(*, competition: Competition) -> list[int]:
    """Container submissions among the top `replicate_top_n` rows of the private
    leaderboard without a finished replication: finalizing waits for them."""
    top_n = competition.replicate_top_n
    if not top_n:
        return []
    rows = (
        LeaderboardEntry.objects.filter(
            competition=competition, split="private", task_version=competition.task.version
        )
        .order_by("-sort_key", "submitted_at", "team_id")
        .values_list("submission_id", "submission__kind")[:top_n]
    )
    containers = [sub_id for sub_id, kind in rows if kind == "container"]
    # A cancelled replication is an organizer's explicit waiver (who and when are on it).
    settled = set(
        Replication.objects.filter(
            submission_id__in=containers, status__in=[Status.DONE, Status.CANCELLED]
        ).values_list("submission_id", flat=True)
    )
    return [sub_id for sub_id in containers if sub_id not in settled]


def replications_pending(*, competition: Competition) -> list[Replication]:
    """The competition's waiting and running replications, oldest first, each with its
    `target_queue`: what the organizer may cancel."""
    pending = list(
        Replication.objects.filter(
            submission__competition=competition, status__in=[Status.QUEUED, Status.RUNNING]
        )
        .select_related("submission__competition__task", "submission__team")
        .order_by("queued_at")
    )
    for replication in pending:
        replication.target_queue = replication_queue(replication)  # type: ignore[attr-defined]
    return pending


def replications_missing_reasons(*, submission_ids: list[int], now=None) -> list[str]:
    """Why each of these submissions still lacks a replication, as sentences for the
    organizer: not requested, or waiting (how long, on which queue), running, failed."""
    now = now or timezone.now()
    latest: dict[int, Replication] = {}
    for replication in (
        Replication.objects.filter(submission_id__in=submission_ids)
        .select_related("submission__competition__task")
        .order_by("created_at")
    ):
        latest[replication.submission_id] = replication
    return [_missing_reason(pk, latest.get(pk), now) for pk in submission_ids]


def _missing_reason(submission_id: int, replication: Replication | None, now) -> str:
    if replication is None:
        return f"#{submission_id}: no replication requested"
    queue = replication_queue(replication)
    if replication.status == Status.QUEUED:
        minutes = (now - replication.queued_at).total_seconds() / 60
        return (
            f"#{submission_id}: replication {replication.pk} queued for {minutes:.0f} min "
            f"on queue {queue!r} (is a worker serving it? it can be cancelled)"
        )
    if replication.status == Status.RUNNING:
        return f"#{submission_id}: replication {replication.pk} running on {replication.worker}"
    return f"#{submission_id}: replication {replication.pk} {replication.status}"
