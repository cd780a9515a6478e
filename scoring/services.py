"""Scoring a submission: claim it, run the scorer, record the outcome, refresh the board.

Every state change is a conditional UPDATE, so a redelivered task, a second worker or the
reaper can never score the same attempt twice or leave a submission stuck.
"""

from __future__ import annotations

import io
import logging
import socket
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from competitions.models import Score, Submission
from competitions.services.leaderboard import leaderboard_refresh_team
from competitions.services.submissions import enqueue_on_commit
from scoring.sandbox import SandboxUnavailable
from scoring.scorers import InProcessScorer, Scorer, ScoringOutcome

log = logging.getLogger(__name__)
Status = Submission.Status


def scorer_default() -> Scorer:
    if settings.HELDOUT_SCORER == "docker":
        from scoring.docker_scorer import DockerScorer
        from scoring.sandbox import DockerRunner, SandboxLimits

        return DockerScorer(
            runner=DockerRunner(), image=settings.HELDOUT_SCORER_IMAGE, limits=SandboxLimits()
        )
    return InProcessScorer()


def submission_claim(*, submission_id: int) -> int | None:
    """Move a queued submission to running. Returns the attempt number, or None if taken."""
    claimed = Submission.objects.filter(pk=submission_id, status=Status.QUEUED).update(
        status=Status.RUNNING,
        started_at=timezone.now(),
        attempts=F("attempts") + 1,
        worker=socket.gethostname()[:200],
    )
    if claimed != 1:
        return None
    return Submission.objects.values_list("attempts", flat=True).get(pk=submission_id)


def submission_score(*, submission_id: int, scorer: Scorer | None = None) -> bool:
    """Score one submission. Returns False when there was nothing to do (already claimed)."""
    attempt = submission_claim(submission_id=submission_id)
    if attempt is None:
        return False
    submission = Submission.objects.select_related("competition__task", "team").get(
        pk=submission_id
    )
    task = submission.competition.task
    scorer = scorer or scorer_default()
    try:
        with tempfile.TemporaryDirectory(prefix="heldout-score-") as workdir:
            outcome = scorer.score(
                predictions_path=_predictions_path(submission, Path(workdir)),
                truth_path=Path(task.ground_truth.path),
                spec=task.spec(),
                workdir=Path(workdir),
            )
    except SandboxUnavailable:
        # Not the submission's fault: give it back to the queue for the retry to claim.
        Submission.objects.filter(pk=submission_id, status=Status.RUNNING, attempts=attempt).update(
            status=Status.QUEUED, queued_at=timezone.now()
        )
        raise
    except Exception as exc:
        log.exception("scoring submission %s failed", submission_id)
        _finish_failed(submission_id, attempt, Submission.Failure.ERROR, f"Scoring failed: {exc}")
        return True
    _record(submission, attempt, task.version, outcome)
    return True


def _predictions_path(submission: Submission, workdir: Path) -> Path:
    """The predictions file the scorer reads.

    The one place where a container submission's inference stage runs (it writes the
    predictions under `workdir` and this returns their path); a prediction-file
    submission is its own predictions.
    """
    return Path(submission.file.path)


def _finish_failed(submission_id: int, attempt: int, failure: str, message: str, **extra) -> None:
    Submission.objects.filter(pk=submission_id, status=Status.RUNNING, attempts=attempt).update(
        status=Status.FAILED,
        failure=failure,
        error_message=message[:10_000],
        finished_at=timezone.now(),
        **extra,
    )


def _record(submission: Submission, attempt: int, version: int, outcome: ScoringOutcome) -> None:
    evaluation = outcome.evaluation
    common = {
        "duration_s": outcome.duration_s,
        "peak_memory_bytes": outcome.peak_memory_bytes,
        "scorer_name": outcome.scorer_name[:100],
        "scorer_image": outcome.scorer_image[:200],
        "scorer_log": outcome.log[-20_000:],
        "task_version": version,
    }
    if not evaluation.ok:
        _finish_failed(
            submission.pk,
            attempt,
            Submission.Failure.INVALID,
            f"The file has {evaluation.total_problems} problem(s); nothing was scored.",
            problems=[p.to_dict() for p in evaluation.problems],
            total_problems=evaluation.total_problems,
            **common,
        )
        return
    rows_name = _save_rows(submission, evaluation.row_values)
    with transaction.atomic():
        done = Submission.objects.filter(
            pk=submission.pk, status=Status.RUNNING, attempts=attempt
        ).update(
            status=Status.SCORED,
            finished_at=timezone.now(),
            problems=[],
            total_problems=0,
            row_values=rows_name,
            row_kind=evaluation.row_kind,
            **common,
        )
        if not done:
            return  # the reaper took it back meanwhile; the newer attempt will record
        Score.objects.bulk_create(
            [
                Score(
                    submission=submission,
                    task_version=version,
                    split=split,
                    metric=metric,
                    value=value,
                )
                for split, by_metric in evaluation.scores.items()
                for metric, value in by_metric.items()
            ],
            update_conflicts=True,
            unique_fields=["submission", "task_version", "split", "metric"],
            update_fields=["value", "created_at"],
        )
        leaderboard_refresh_team(team=submission.team)


def _save_rows(submission: Submission, rows: np.ndarray | None) -> str:
    if rows is None:
        return ""
    buffer = io.BytesIO()
    np.save(buffer, rows.astype(np.float32, copy=False), allow_pickle=False)
    storage = submission.row_values.storage
    return storage.save(f"rows/{submission.pk}.npy", ContentFile(buffer.getvalue()))


def submissions_reap(*, now=None) -> dict[str, int]:
    """Requeue work whose worker died, and fail it after too many attempts."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.HELDOUT_STALE_AFTER_S)
    gave_up = Submission.objects.filter(
        status=Status.RUNNING, started_at__lt=stale, attempts__gte=settings.HELDOUT_MAX_ATTEMPTS
    ).update(
        status=Status.FAILED,
        failure=Submission.Failure.ERROR,
        error_message=f"Scoring was interrupted {settings.HELDOUT_MAX_ATTEMPTS} times; "
        "an organizer can rescore it.",
        finished_at=now,
    )
    requeue_ids = list(
        Submission.objects.filter(status=Status.RUNNING, started_at__lt=stale).values_list(
            "pk", flat=True
        )
    )
    # A queued submission whose message was lost (broker restarted) is queued again;
    # a duplicate message is harmless because claiming is conditional.
    lost_ids = list(
        Submission.objects.filter(status=Status.QUEUED, queued_at__lt=stale).values_list(
            "pk", flat=True
        )
    )
    with transaction.atomic():
        Submission.objects.filter(pk__in=requeue_ids, status=Status.RUNNING).update(
            status=Status.QUEUED, queued_at=now
        )
        Submission.objects.filter(pk__in=lost_ids, status=Status.QUEUED).update(queued_at=now)
        for pk in requeue_ids + lost_ids:
            enqueue_on_commit(pk)
    return {"failed": gave_up, "requeued": len(requeue_ids), "resent": len(lost_ids)}
