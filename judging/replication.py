"""Replication: run a container submission's image again, score it, compare the scores.

An organizer asks (replication_request); a worker, possibly on another queue and so on
other hardware, runs the same image digest through inference and scoring again
(replication_run) and records the outcome on the entry: reproduced (identical), within
tolerance (with the difference), or diverged. The original scores and files are never
touched: the replication writes its own manifest (a ScoringRun of kind "replication").
"""

from __future__ import annotations

import logging
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from competitions.errors import InvalidState
from competitions.files import local_copy
from competitions.models import (
    Competition,
    LeaderboardEntry,
    Replication,
    ScoringRun,
    Submission,
    TaskVersion,
)
from competitions.services.outbox import enqueue
from judging.cleanup import REPLICATE, attempt_work_dir
from judging.heartbeat import INFRASTRUCTURE_ERRORS, beating, give_back
from judging.inference import inference_run
from judging.manifest import manifest_build, scoring_run_latest
from judging.services import (
    SUBMISSION_LABEL,
    RecordingRunner,
    sandbox_runner,
    sandbox_runs_save,
    scorer_default,
)
from scoring.replay import compare
from scoring.sandbox import SandboxRunner

log = logging.getLogger(__name__)
Status = Replication.Status
OUTCOMES = {
    "reproduced": Replication.Outcome.REPRODUCED,
    "within_tolerance": Replication.Outcome.WITHIN_TOLERANCE,
    "not_reproduced": Replication.Outcome.DIVERGED,
}


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


def replication_queue(replication: Replication) -> str:
    """The worker queue a replication is sent to."""
    task = replication.submission.competition.task
    return replication.queue or task.queue or settings.CELERY_TASK_DEFAULT_QUEUE


def replication_enqueue_on_commit(replication: Replication) -> None:
    target = replication_queue(replication)

    enqueue("scoring.tasks.replication_run_task", [replication.pk], queue=target)


def replication_claim(*, replication_id: int) -> int | None:
    """Move a queued replication to running. Returns the claim's attempt number, or None
    if it is not queued (taken, cancelled, finished)."""
    now = timezone.now()
    claimed = Replication.objects.filter(pk=replication_id, status=Status.QUEUED).update(
        status=Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        worker=socket.gethostname()[:200],
    )
    if claimed != 1:
        return None
    return Replication.objects.values_list("attempts", flat=True).get(pk=replication_id)


def replication_cancel(*, replication: Replication, user: User | None) -> Replication:
    """An organizer gives up a queued or running replication: it is no longer required
    to finalize (replications_missing), and records who cancelled it and when. A worker
    still running it records nothing (its writes are conditional on RUNNING). Raises
    InvalidState when it has already ended."""
    now = timezone.now()
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
    replication.refresh_from_db()
    return replication


def replication_run(*, replication_id: int, runner: SandboxRunner | None = None) -> bool:
    """Run one replication. Returns False when there was nothing to do (already claimed).
    Like submission_score, it heartbeats and gives the claim back on an infrastructure
    fault."""
    started = timezone.now()
    attempt = replication_claim(replication_id=replication_id)
    if attempt is None:
        return False
    with beating(Replication, replication_id, attempt):
        try:
            _run_claimed(replication_id, attempt, runner, started)
        except INFRASTRUCTURE_ERRORS as exc:
            log.warning("replication %s goes back to the queue: %r", replication_id, exc)
            give_back(Replication, replication_id, attempt)
            raise
    return True


def _run_claimed(replication_id: int, attempt: int, runner: SandboxRunner | None, started) -> None:
    replication = Replication.objects.select_related(
        "submission__competition__task", "submission__team", "original_run"
    ).get(pk=replication_id)
    submission = replication.submission
    recorder = RecordingRunner(
        runner or sandbox_runner(), labels={SUBMISSION_LABEL: str(submission.pk)}
    )
    try:
        with attempt_work_dir(kind=REPLICATE, object_id=replication_id, attempt=attempt) as workdir:
            manifest = _rerun(replication, recorder, workdir, started)
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as exc:
        log.warning("replication %s failed: %s", replication_id, exc)
        Replication.objects.filter(
            pk=replication_id, status=Status.RUNNING, attempts=attempt
        ).update(status=Status.FAILED, error_message=str(exc)[:10_000], finished_at=timezone.now())
        return
    finally:
        _runs_save(submission, recorder)  # those of a failed replication
    _finish(replication, manifest, attempt)


def _runs_save(submission: Submission, recorder: RecordingRunner) -> None:
    sandbox_runs_save(
        submission_id=submission.pk, attempt=max(submission.attempts, 1), runs=recorder.runs
    )
    recorder.runs = []


def _rerun(
    replication: Replication, runner: RecordingRunner, workdir: Path, started
) -> dict[str, Any]:
    """Inference and scoring again, under the original scoring's task version."""
    submission = replication.submission
    task = submission.competition.task
    assert replication.original_run is not None
    number = replication.original_run.task_version
    version = TaskVersion.objects.filter(task=task, number=number).first()
    stored_truth = version.ground_truth if version else task.ground_truth
    truth = local_copy(stored_truth, workdir / "truth")
    with _predictions_kept(submission, workdir):
        written = inference_run(submission=submission, runner=runner, workdir=workdir)
        predictions = workdir / "replicated-predictions"
        shutil.copyfile(written, predictions)
    scorer = scorer_default(task=task, runner=runner)
    outcome = scorer.score(
        predictions_path=predictions, truth_path=truth, spec=task.spec(), workdir=workdir
    )
    finished = timezone.now()
    _runs_save(submission, runner)  # saved before the manifest, which lists them
    timing = {
        "queued_at": replication.created_at.isoformat(),
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "scoring_duration_s": outcome.duration_s,
        "peak_memory_bytes": outcome.peak_memory_bytes,
    }
    submission.refresh_from_db()
    return manifest_build(
        submission=submission,
        outcome=outcome,
        task_version=number,
        scorer=scorer,
        kind="replication",
        predictions=predictions,
        runs_since=started,
        timing=timing,
    )


@contextmanager
def _predictions_kept(submission: Submission, workdir: Path) -> Iterator[None]:
    """Keep the original predictions: the inference stage stores what it writes as the
    submission's predictions, and the original manifest and bundles refer to those."""
    field = submission.predictions
    original_name = field.name if field else ""
    saved = workdir / "original-predictions"
    if original_name:
        with field.open("rb") as source, saved.open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    try:
        yield
    finally:
        if original_name:
            current = Submission.objects.get(pk=submission.pk).predictions
            if current.name:
                current.storage.delete(current.name)
            with saved.open("rb") as f:
                name = current.storage.save(original_name, File(f))
            Submission.objects.filter(pk=submission.pk).update(predictions=name)


def _finish(replication: Replication, manifest: dict[str, Any], attempt: int) -> None:
    original = replication.original_run
    assert original is not None
    replayed = {
        "predictions_sha256": manifest["predictions"]["sha256"],
        "ground_truth_sha256": manifest["ground_truth"]["sha256"],
        "split_sha256": manifest["ground_truth"]["split_sha256"],
        "image_digest": manifest["scorer"]["image_digest"],
        "libraries": manifest["libraries"]["versions"],
        "scores": manifest["scores"],
        "total_problems": manifest["validation"]["total_problems"],
    }
    report = compare(original.manifest, replayed, tolerance=replication.tolerance)
    differences = {
        "max_abs_difference": report["max_abs_difference"],
        "scores": report["scores"],
        "differences": report["differences"],
        "container_image_digest": {
            "original": (original.manifest.get("container") or {}).get("image_digest"),
            "replicated": (manifest.get("container") or {}).get("image_digest"),
        },
    }
    with transaction.atomic():
        # Locked, so a cancellation or the reaper either came first or waits.
        mine = Replication.objects.select_for_update().filter(
            pk=replication.pk, status=Status.RUNNING, attempts=attempt
        )
        if not list(mine.values_list("pk", flat=True)):
            return  # cancelled or taken back meanwhile: record nothing
        new_run = ScoringRun.objects.create(
            submission=replication.submission,
            task_version=manifest["task"]["version"],
            manifest=manifest,
        )
        mine.update(
            status=Status.DONE,
            outcome=OUTCOMES[report["outcome"]],
            differences=differences,
            new_run=new_run,
            finished_at=timezone.now(),
        )


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
