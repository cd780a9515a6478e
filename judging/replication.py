"""Replication: run a container submission's image again, score it, compare the scores.

An organizer asks (competitions.services.replications); a worker, possibly on another queue and so on
other hardware, runs the same image digest through inference and scoring again
(replication_run) and records the outcome on the entry: reproduced (identical), within
tolerance (with the difference), or diverged. The original scores and files are never
touched: the replication writes its own manifest (a ScoringRun of kind "replication").
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.files import File
from django.db import transaction
from django.utils import timezone

from competitions.files import local_copy
from competitions.heartbeat import beating, claim, give_back
from competitions.models import (
    Replication,
    ScoringRun,
    Submission,
    TaskVersion,
)
from competitions.sandboxes import sandbox_runner
from judging.cleanup import REPLICATE, attempt_work_dir
from judging.heartbeat import INFRASTRUCTURE_ERRORS
from judging.inference import inference_run
from judging.manifest import manifest_build
from judging.services import sandbox_runs_save, scorer_default
from scoring.recording import SUBMISSION_LABEL, RecordingRunner
from scoring.replay import compare
from scoring.sandbox import SandboxRunner

log = logging.getLogger(__name__)
Status = Replication.Status
OUTCOMES = {
    "reproduced": Replication.Outcome.REPRODUCED,
    "within_tolerance": Replication.Outcome.WITHIN_TOLERANCE,
    "not_reproduced": Replication.Outcome.DIVERGED,
}


def replication_claim(*, replication_id: int) -> int | None:
    """Move a queued replication to running. Returns the claim's attempt number, or None
    if it is not queued (taken, cancelled, finished)."""
    return claim(Replication, replication_id)


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
    # Tagged with the number of the submission's latest attempt (the one replicated).
    latest = submission.latest_attempt
    sandbox_runs_save(
        submission_id=submission.pk, attempt=latest.number if latest else 1, runs=recorder.runs
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
