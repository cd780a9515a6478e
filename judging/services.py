"""Scoring a submission: choose the scorer, claim the submission, run it, record the
outcome and every sandbox run, refresh the board.

Every state change is a conditional UPDATE, so a redelivered task, a second worker or the
reaper can never score the same attempt twice or leave a submission stuck.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
from pathlib import Path
from typing import Any

import docker
import docker.errors
import numpy as np
import requests.exceptions
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from competitions.files import local_copy, stored_size
from competitions.heartbeat import beating, claim, give_back, submission_claim_end
from competitions.models import Attempt, SandboxRun, Score, Submission, Task, TaskVersion
from competitions.sandboxes import sandbox_limits, sandbox_runner
from competitions.selectors import run_reason_for_participants
from competitions.services.events import submission_outcome_emit
from competitions.services.leaderboard import leaderboard_refresh_team
from competitions.services.outbox import enqueue
from competitions.services.scorer_identity import (
    IN_PROCESS,
    ScorerMismatch,
    scorer_mismatch_report,
    version_for_scorer,
)
from competitions.services.submissions import SCORE_TASK
from judging.cleanup import SCORE, attempt_work_dir
from judging.heartbeat import INFRASTRUCTURE_ERRORS, storage_errors
from judging.images import ImageRefused
from judging.manifest import scoring_manifest, scoring_run_save
from scoring.docker_scorer import DockerScorer
from scoring.image_identity import DIGEST_REFERENCE
from scoring.influence import RowInfluence, influence_dump
from scoring.program_scorer import ProgramScorer
from scoring.recording import SUBMISSION_LABEL, RecordedRun, RecordingRunner
from scoring.sandbox import SandboxError, SandboxRunner, SandboxUnavailable
from scoring.sandbox_docker import DockerRunner
from scoring.scorers import InProcessScorer, Scorer, ScoringOutcome

log = logging.getLogger(__name__)
Status = Submission.Status
Stage = SandboxRun.Stage

# --- Choosing the scorer -----------------------------------------------------------------


@functools.cache
def docker_available() -> bool:
    """Whether this process reaches a Docker engine that has the scorer image. Asked once
    per worker process: a worker started without them scores in-process until it restarts.
    (Without the image every scoring would wait for it in the retry loop: `make demo` on
    a machine with Docker but no `make scorer-image` must still score.)"""
    image = settings.HELDOUT_SCORER_IMAGE
    try:
        client = docker.from_env(timeout=10)
        try:
            client.ping()
            # An image named by its registry digest is the operator's choice of the sandbox:
            # the runner pulls it at the first scoring (retrying while the registry is down).
            if not DIGEST_REFERENCE.fullmatch(image):
                client.images.get(image)
        finally:
            client.close()
    except docker.errors.ImageNotFound:
        log.warning("The scorer image %s is missing: scoring in-process, without a sandbox.", image)
        return False
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        log.warning("No Docker engine answers (%s): scoring in-process, without a sandbox.", exc)
        return False
    return True


def scoring_mode() -> str:
    """ "docker" or "in-process", from HELDOUT_SCORER (auto: docker if an engine answers)."""
    if settings.HELDOUT_SCORER == "auto":
        return "docker" if docker_available() else "in-process"
    return settings.HELDOUT_SCORER


def scorer_default(*, task: Task | None = None, runner: SandboxRunner | None = None) -> Scorer:
    """The scorer for `task` on this worker; `runner` is the engine (default: Docker).

    An organizer's scoring program always runs in the sandbox. The built-in scorer runs
    there too unless scoring_mode() is in-process. Raises ValueError for invalid limits.
    """
    program = task is not None and bool(task.scorer_program)
    if not program and scoring_mode() == "in-process":
        return InProcessScorer(max_problems=settings.HELDOUT_MAX_PROBLEMS)
    runner = runner or sandbox_runner()
    limits = sandbox_limits(overrides=task.limits if task is not None else None)
    image = (task.scorer_image if task is not None else "") or settings.HELDOUT_SCORER_IMAGE
    if task is not None and program:
        fetch = functools.partial(local_copy, task.scorer_program)
        return ProgramScorer(runner=runner, image=image, limits=limits, program_path=fetch)
    return DockerScorer(
        runner=runner, image=image, limits=limits, max_problems=settings.HELDOUT_MAX_PROBLEMS
    )


# --- Recording sandbox runs ----------------------------------------------------------------


def sandbox_runs_save(*, submission_id: int, attempt: int, runs: list[RecordedRun]) -> None:
    SandboxRun.objects.bulk_create(
        SandboxRun(
            submission_id=submission_id,
            stage=run.stage,
            attempt=attempt,
            image=run.result.image[:200],
            image_digest=run.result.image_digest[:100],
            limits=dataclasses.asdict(run.limits),
            exit_code=run.result.exit_code,
            timed_out=run.result.timed_out,
            oom_killed=run.result.oom_killed,
            duration_s=run.result.duration_s,
            peak_memory_bytes=run.result.peak_memory_bytes,
            log=run.result.log,
            failure_reason=run.result.failure_reason(run.limits) or "",
        )
        for run in runs
    )


# --- Scoring -------------------------------------------------------------------------------


def submission_claim(*, submission_id: int) -> int | None:
    """Move a queued submission to running. Returns the claim's attempt number (which tags
    every write of this claim), or None if the submission is not queued."""
    return claim(Submission, submission_id)


def submission_score(
    *, submission_id: int, scorer: Scorer | None = None, runner: SandboxRunner | None = None
) -> bool:
    """Score one submission. Returns False when there was nothing to do (already claimed).

    `scorer` replaces the task's scorer (tests); `runner` the Docker engine. Every
    container run is saved as a SandboxRun, whatever happens next. While it runs the claim
    heartbeats; an infrastructure fault (judging.heartbeat.INFRASTRUCTURE_ERRORS) gives the
    submission back to the queue, its allowances untouched, and is raised for the task's
    retry.
    """
    attempt = submission_claim(submission_id=submission_id)
    if attempt is None:
        return False
    log.info("scoring attempt %s of submission %s", attempt, submission_id)
    with beating(Submission, submission_id, attempt):
        try:
            finished = _score_claimed(submission_id, attempt, scorer, runner)
        except INFRASTRUCTURE_ERRORS as exc:
            log.warning("submission %s goes back to the queue: %r", submission_id, exc)
            give_back(Submission, submission_id, attempt)
            raise
    if finished:  # the outcome is committed: scored or failed (webhooks; never raises)
        log.info("submission %s finished (attempt %s)", submission_id, attempt)
        submission_outcome_emit(submission_id=submission_id, attempt=attempt)
    return finished


def _score_claimed(
    submission_id: int, attempt: int, scorer: Scorer | None, runner: SandboxRunner | None
) -> bool:
    """Score a claimed attempt. False when it was left to a worker whose scorer matches."""
    submission = Submission.objects.select_related("competition__task", "team", "phase").get(
        pk=submission_id
    )
    task = submission.competition.task
    pinned = _pinned_version(submission, task)
    truth = task.ground_truth if pinned is None else pinned.ground_truth
    recorder = RecordingRunner(
        runner or sandbox_runner(), labels={SUBMISSION_LABEL: str(submission_id)}
    )
    try:
        chosen = scorer or scorer_default(task=task, runner=recorder)
        # Before the version is looked up (which may read it): a storage fault is retried.
        _reachable(truth, "reading the ground truth")
        identity, also = _scorer_identity(chosen, runner or sandbox_runner())
        # An explicit `scorer` (tests) is not checked against the version.
        version = _version_for(task, identity if scorer is None else "", also, pinned)
        with attempt_work_dir(kind=SCORE, object_id=submission_id, attempt=attempt) as workdir:
            truth_path = _fetched(truth, workdir / "truth", "reading the ground truth")
            outcome = chosen.score(
                predictions_path=_predictions_path(submission, workdir, recorder),
                truth_path=truth_path,
                spec=task.spec(),
                workdir=workdir,
            )
        outcome.scorer_identity = identity
    except ScorerMismatch as exc:
        _give_back(submission, attempt, exc, image=getattr(chosen, "image", ""))
        return False
    except INFRASTRUCTURE_ERRORS:
        raise
    except ImageRefused as exc:
        # The archive's own fault, found before anything ran: invalid, like a bad file.
        problems = exc.problems
        _finish_failed(
            submission_id,
            attempt,
            Submission.Failure.INVALID,
            str(exc),
            problems=problems,
            total_problems=len(problems),
        )
        return True
    except SandboxError as exc:
        _finish_failed_in_sandbox(submission, attempt, str(exc), recorder.runs, chosen)
        return True
    except Exception as exc:
        log.exception("scoring submission %s failed", submission_id)
        _finish_failed(submission_id, attempt, Submission.Failure.ERROR, f"Scoring failed: {exc}")
        return True
    finally:
        sandbox_runs_save(submission_id=submission_id, attempt=attempt, runs=recorder.runs)
    _record(submission, attempt, version, outcome, chosen)
    return True


def _reachable(field_file: FieldFile, what: str) -> None:
    with storage_errors(what):
        stored_size(field_file)


def _fetched(field_file: FieldFile, dest_dir: Path, what: str) -> Path:
    """A local copy of a stored file in the attempt's work folder: a storage that fails
    is the platform's fault (retried), not the submission's."""
    with storage_errors(what):
        return local_copy(field_file, dest_dir)


def _scorer_identity(scorer: Scorer, runner: SandboxRunner) -> tuple[str, tuple[str, ...]]:
    """(identity, what else a recorded version may name it by: its local image id, and
    its content label when it runs by registry digest) of the scorer about to run;
    ("", ()) when the engine cannot say (a test's fake engine)."""
    if scorer.name == InProcessScorer.name:
        return IN_PROCESS, ()
    image = getattr(scorer, "image", "")
    if not image or not isinstance(runner, DockerRunner):
        return "", ()
    also = (runner.image_digest(image), *runner.scorer_aliases(image))
    return runner.scorer_identity(image), also


def _pinned_version(submission: Submission, task: Task) -> TaskVersion | None:
    """The version the submission's phase scores under, when it pins one the board does
    not rank (competitions/services/phase_versions.py); None: the ranked version."""
    number = submission.phase.task_version
    if number is None or number == task.version:
        return None
    return TaskVersion.objects.get(task=task, number=number)


def _version_for(
    task: Task, identity: str, also: tuple[str, ...], pinned: TaskVersion | None
) -> int:
    """The task version these scores will belong to: the ranked one (or the one the
    submission's phase pins), if this scorer is the one it records (raises ScorerMismatch
    otherwise; workers never make versions)."""
    image_id, aliases = (also[0], also[1:]) if also else ("", ())
    number = None if pinned is None else pinned.number
    return version_for_scorer(
        task=task, identity=identity, image_id=image_id, aliases=aliases, number=number
    )


def _give_back(submission: Submission, attempt: int, mismatch: ScorerMismatch, image: str) -> None:
    """Leave the submission to a worker whose scorer matches: queued again (this attempt
    RETURNED, which no allowance counts), re-sent to the task's queue after
    HELDOUT_SCORER_MISMATCH_RETRY_S."""
    task = submission.competition.task
    returned = submission_claim_end(
        submission_id=submission.pk,
        attempt=attempt,
        outcome=Attempt.Outcome.RETURNED,
        submission_fields={"status": Status.QUEUED, "queued_at": timezone.now()},
    )
    scorer_mismatch_report(task=task, mismatch=mismatch, submission_id=submission.pk, image=image)
    if not returned:
        return

    enqueue(
        SCORE_TASK,
        [submission.pk],
        queue=task.queue or "",
        countdown=int(settings.HELDOUT_SCORER_MISMATCH_RETRY_S),
    )


def _predictions_path(submission: Submission, workdir: Path, runner: SandboxRunner) -> Path:
    """The predictions file the scorer reads.

    The one place where a container submission's inference stage runs (it writes the
    predictions under `workdir` and this returns their path; `runner` records the run);
    a prediction-file submission is its own predictions.
    """
    if submission.kind == "container":
        from judging.inference import inference_run

        return inference_run(submission=submission, runner=runner, workdir=workdir)
    return _fetched(submission.file, workdir / "submission", "reading the submission")


def _finish_failed(
    submission_id: int,
    attempt: int,
    failure: str,
    message: str,
    *,
    run: dict[str, Any] | None = None,
    **extra,
) -> bool:
    """Fail the claim `attempt` (`run`: the attempt's results, `extra`: the submission's
    other fields); whether it was still ours to fail."""
    return submission_claim_end(
        submission_id=submission_id,
        attempt=attempt,
        outcome=Attempt.Outcome.FAILED,
        attempt_fields=run,
        submission_fields={
            "status": Status.FAILED,
            "failure": failure,
            "error_message": message[:10_000],
            **extra,
        },
    )


def _finish_failed_in_sandbox(
    submission: Submission, attempt: int, error: str, runs: list[RecordedRun], scorer: Scorer
) -> None:
    """Fail with the failed run's reason ("exceeded memory limit of 2 GiB"), as the
    participant may read it, or with what was wrong with the output of a run that ended
    well. The scorer run's image, time, memory and log go on the attempt."""
    failed = next((run for run in reversed(runs) if not run.result.ok), None)
    if failed is not None:
        reason = run_reason_for_participants(
            failed.result.failure_reason(failed.limits) or error,
            stage=failed.stage,
            scorer_logs_visible=submission.competition.task.scorer_logs_visible,
        )
        subject = "The scorer" if failed.stage == Stage.SCORING else "Your container"
        error = f"{subject} {reason}"
    elif runs and runs[-1].stage != Stage.SCORING:
        error = error[:1].upper() + error[1:]  # e.g. "your container wrote no predictions"
    else:
        error = f"Scoring failed: {error}"
    results: dict[str, Any] = {"scorer_name": scorer.name[:100]}
    scoring = [run.result for run in runs if run.stage == Stage.SCORING]
    if scoring:
        results |= {
            "scorer_image": f"{scoring[-1].image}@{scoring[-1].image_digest}"[:200],
            "duration_s": scoring[-1].duration_s,
            "peak_memory_bytes": scoring[-1].peak_memory_bytes,
            "scorer_log": scoring[-1].log[-20_000:],
        }
    _finish_failed(submission.pk, attempt, Submission.Failure.ERROR, error, run=results)


def _record(
    submission: Submission, attempt: int, version: int, outcome: ScoringOutcome, scorer: Scorer
) -> None:
    """Commit the outcome with its scores and its manifest, all in one transaction, unless
    the reaper took the claim back meanwhile (the newer attempt records its own)."""
    evaluation = outcome.evaluation
    finished_at = timezone.now()
    results: dict[str, Any] = {
        "finished_at": finished_at,
        "duration_s": outcome.duration_s,
        "peak_memory_bytes": outcome.peak_memory_bytes,
        "scorer_name": outcome.scorer_name[:100],
        "scorer_image": outcome.scorer_image[:200],
        "scorer_log": outcome.log[-20_000:],
    }
    manifest = scoring_manifest(
        submission_id=submission.pk,
        attempt=attempt,
        outcome=outcome,
        task_version=version,
        scorer=scorer,
        finished_at=finished_at,
    )
    if not evaluation.ok:
        with transaction.atomic():
            if _finish_failed(
                submission.pk,
                attempt,
                Submission.Failure.INVALID,
                f"The file has {evaluation.total_problems} problem(s); nothing was scored.",
                run=results,
                problems=[p.to_dict() for p in evaluation.problems],
                total_problems=evaluation.total_problems,
                task_version=version,
            ):
                scoring_run_save(submission_id=submission.pk, manifest=manifest)
        return
    with storage_errors("writing the per-row results"):
        rows_name = _save_rows(submission.pk, attempt, evaluation.row_values)
        influence_name = _save_influence(submission, evaluation.influence)
    with transaction.atomic():
        done = submission_claim_end(
            submission_id=submission.pk,
            attempt=attempt,
            outcome=Attempt.Outcome.SCORED,
            attempt_fields=results | {"row_values": rows_name, "row_kind": evaluation.row_kind},
            submission_fields={
                "status": Status.SCORED,
                "problems": [],
                "total_problems": 0,
                "influence": influence_name,
                "task_version": version,
            },
        )
        if not done:
            return
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
        scoring_run_save(submission_id=submission.pk, manifest=manifest)


def _save_rows(submission_id: int, attempt: int, rows: np.ndarray | None) -> str:
    if rows is None:
        return ""
    buffer = io.BytesIO()
    np.save(buffer, rows.astype(np.float32, copy=False), allow_pickle=False)
    storage = Attempt._meta.get_field("row_values").storage  # type: ignore[union-attr]
    name = f"rows/{submission_id}-{attempt}.npy"
    return storage.save(name, ContentFile(buffer.getvalue()))


def _save_influence(submission: Submission, influence: dict[str, RowInfluence]) -> str:
    if not influence:
        return ""
    storage = submission.influence.storage
    name = f"influence/{submission.pk}.npz"
    return storage.save(name, ContentFile(influence_dump(influence)))


def sandbox_cleanup_stale(*, runner: DockerRunner | None = None) -> int:
    """Kill and remove the sandbox containers that this deployment's dead workers left on
    this host's engine, HELDOUT_SANDBOX_CLEANUP_GRACE_S past their deadline.

    Run by each worker's clean-up timer (judging.cleanup). The submissions they were
    scoring are still RUNNING; the reaper requeues them once their heartbeat is
    HELDOUT_RECOVER_AFTER_S old. Returns how many containers went; 0 without an engine.
    """
    # A client of its own, closed at once: this runs in the worker's main process, whose
    # open connections prefork children would otherwise share.
    own = runner is None
    runner = runner or DockerRunner(deployment=settings.HELDOUT_DEPLOYMENT_ID)
    try:
        removed = runner.cleanup_stale(grace_s=settings.HELDOUT_SANDBOX_CLEANUP_GRACE_S)
        if own:
            runner.client.close()
    except SandboxUnavailable as exc:
        log.debug("No stale sandbox containers removed: %s", exc)
        return 0
    # Every CLEANUP_EVERY_S: quiet unless something was left behind.
    level = logging.WARNING if removed else logging.DEBUG
    log.log(level, "Sandbox clean-up: removed %d container(s) left by dead workers.", removed)
    return removed
