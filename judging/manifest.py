"""The manifest of a scoring: everything needed to re-derive its scores (docs/manifest.md).

scoring_manifest and scoring_run_save write one ScoringRun row, with its manifest, with the
outcome of every scoring (judging.replication, of every replication). The manifest is plain JSON, validated by docs/manifest.schema.json.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db.models.fields.files import FieldFile
from django.utils import timezone

from competitions.files import local_file, sha256_of, stored_size
from competitions.models import Attempt, SandboxRun, ScoringRun, Submission, Task, TaskVersion
from competitions.services.bundles import file_sha256
from judging.heartbeat import INFRASTRUCTURE_ERRORS, storage_errors
from scoring.cli import library_versions, truth_summary
from scoring.evaluate import load_truth
from scoring.manifest import host_description, platform_version
from scoring.metrics import metric_get
from scoring.scorers import ScoringOutcome
from scoring.spec import TaskSpec

log = logging.getLogger(__name__)
SCHEMA_VERSION = "1"
NO_SEEDS = (
    "The built-in scoring uses no random numbers: validation and the scikit-learn metrics "
    "are deterministic functions of the two files."
)


def scoring_manifest(
    *,
    submission_id: int,
    attempt: int,
    outcome: ScoringOutcome,
    task_version: int,
    scorer: object | None,
    finished_at: datetime,
) -> dict[str, Any] | None:
    """The manifest of a scoring about to be committed (judging.services), built before the
    commit so that the outcome and its ScoringRun (scoring_run_save) are committed together:
    a fault between the two can no longer leave scores without their manifest.

    A fault of the database or of the storage is raised: the claim is given back and
    retried, nothing of it recorded. Any other failure is logged and gives None: the scores
    stay valid without their manifest.
    """
    fresh = Submission.objects.select_related("competition__task", "team").get(pk=submission_id)
    claim = Attempt.objects.get(submission_id=submission_id, number=attempt)
    claim.finished_at = finished_at
    try:
        with storage_errors("reading the files the manifest describes"):
            return manifest_build(
                submission=fresh,
                outcome=outcome,
                task_version=task_version,
                scorer=scorer,
                attempt=claim,
            )
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception:
        log.exception("the manifest of submission %s could not be made", submission_id)
        return None


def scoring_run_save(*, submission_id: int, manifest: dict[str, Any] | None) -> None:
    """Record a manifest from scoring_manifest, in the transaction that records its outcome."""
    if manifest is not None:
        ScoringRun.objects.create(
            submission_id=submission_id, task_version=manifest["task"]["version"], manifest=manifest
        )


def manifest_build(
    *,
    submission: Submission,
    outcome: ScoringOutcome,
    task_version: int | None,
    scorer: object | None = None,
    kind: str = "scoring",
    predictions: Path | None = None,
    runs_since: datetime | None = None,
    timing: dict[str, Any] | None = None,
    attempt: Attempt | None = None,
) -> dict[str, Any]:
    """The manifest of a scoring that just ran: `attempt` is its claim (its sandbox runs and
    times). A replication passes instead the predictions its inference stage wrote, when it
    started (to pick its own sandbox runs) and its times."""
    task = submission.competition.task
    number = task_version or task.version
    version = _task_version(task, number)
    evaluation = outcome.evaluation
    truth = version.ground_truth if version else task.ground_truth
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "created_at": _iso(timezone.now()),
        "platform": {"name": "heldout", "version": platform_version()},
        "competition": {"slug": submission.competition.slug, "title": submission.competition.title},
        "submission": _submission_part(submission),
        "predictions": _predictions_part(submission, predictions),
        "container": _container_part(submission),
        "task": _task_part(task, number),
        "ground_truth": _truth_part(truth, task.spec(), evaluation.provenance),
        "scorer": _scorer_part(outcome, task),
        "metrics": [_metric_part(name) for name in task.spec().metrics],
        "libraries": _libraries_part(outcome),
        "scores": evaluation.scores,
        "validation": {"total_problems": evaluation.total_problems},
        "stages": _stages_part(submission, outcome, scorer, runs_since, attempt),
        "timing": timing or _timing_part(submission, attempt, outcome),
        "random_seeds": {"used": [], "note": NO_SEEDS},
        "host": host_description(),
    }


# --- The parts ---------------------------------------------------------------------------


def _task_version(task: Task, number: int) -> TaskVersion | None:
    if number == task.version:
        from competitions.services.versions import task_version_ensure

        return task_version_ensure(task=task)
    return TaskVersion.objects.filter(task=task, number=number).first()


def _submission_part(submission: Submission) -> dict[str, Any]:
    return {
        "id": submission.pk,
        "kind": submission.kind,
        "team": submission.team.name,
        "created_at": _iso(submission.created_at),
        "file": {
            "name": submission.original_name,
            "sha256": submission.sha256,
            "size": submission.size,
        },
        "method": {
            "name": submission.method_name,
            "description": submission.description,
            "paper_url": submission.paper_url,
            "code_url": submission.code_url,
            "hardware_declared": submission.hardware_declared,
        },
    }


def _predictions_part(submission: Submission, predictions: Path | None) -> dict[str, Any]:
    """The file the scorer read: the upload, or what a container's inference stage wrote."""
    if predictions is not None:
        return {
            "source": "inference",
            "sha256": file_sha256(predictions),
            "size": predictions.stat().st_size,
        }
    if submission.kind == "container" and submission.predictions:
        stored = submission.predictions
        return {
            "source": "inference",
            "sha256": sha256_of(stored),
            "size": stored_size(stored),
        }
    return {"source": "upload", "sha256": submission.sha256, "size": submission.size}


def _container_part(submission: Submission) -> dict[str, Any] | None:
    if submission.kind != "container":
        return None
    return {
        "image": submission.container_image,
        "image_digest": submission.container_image_digest,
        "image_size": submission.container_image_size,
    }


def _task_part(task: Task, number: int) -> dict[str, Any]:
    return {"version": number, "ranked_version": task.version, "spec": task.spec().to_dict()}


def _truth_part(truth: FieldFile, spec: TaskSpec, provenance: dict[str, Any]) -> dict[str, Any]:
    # The scorer container reports the split it read; in process it is derived here, once
    # per file content and process.
    key = _stored_key(truth)
    summary = provenance.get("truth") or _truth_summary(key, truth, spec)
    return {
        "sha256": _cached_sha256(key, truth),
        "size": key[1],
        "split_sha256": summary["split_sha256"],
        "rows": summary["rows"],
    }


def _scorer_part(outcome: ScoringOutcome, task: Task) -> dict[str, Any]:
    image, _, digest = outcome.scorer_image.partition("@")
    organizer = outcome.scorer_name == "program"  # scoring.program_scorer.ProgramScorer
    program_sha256 = None
    if organizer and task.scorer_program:
        # The file that ran, hashed (once per content) rather than trusted from the version.
        program = task.scorer_program
        program_sha256 = _cached_sha256(_stored_key(program), program)
    return {
        "name": outcome.scorer_name,
        "image": image or None,
        "image_digest": digest or None,
        # What the task version checks: the same on every host for the same scorer.
        "identity": outcome.scorer_identity or None,
        "program": "organizer score.py" if organizer else "python -m scoring.cli",
        "program_sha256": program_sha256,
    }


def _metric_part(name: str) -> dict[str, Any]:
    metric = metric_get(name)
    return {
        "name": metric.name,
        "label": metric.label,
        "higher_is_better": metric.higher_is_better,
        "implementation": f"{metric.fn.__module__}.{metric.fn.__qualname__}",
    }


def _libraries_part(outcome: ScoringOutcome) -> dict[str, Any]:
    reported = outcome.evaluation.provenance.get("libraries")
    if reported:
        return {"source": "scorer container", "versions": reported}
    if outcome.scorer_name == "in-process":
        return {"source": "worker process", "versions": library_versions()}
    return {"source": "not reported by the scorer", "versions": {}}


def _stages_part(
    submission: Submission,
    outcome: ScoringOutcome,
    scorer: object | None,
    since: datetime | None,
    attempt: Attempt | None,
) -> list[dict[str, Any]]:
    # This scoring's runs: those of its attempt (numbers go on across rescores) since it
    # started (a replication's runs carry the number of the attempt it replicates).
    runs_qs = SandboxRun.objects.filter(submission=submission).order_by("created_at", "pk")
    if attempt is not None:
        since = attempt.started_at
        runs_qs = runs_qs.filter(attempt=attempt.number)
    if since is not None:
        runs_qs = runs_qs.filter(created_at__gte=since)
    runs = list(runs_qs)
    if runs:
        return [_run_part(run) for run in runs]
    limits = getattr(scorer, "limits", None)
    image, _, digest = outcome.scorer_image.partition("@")
    return [
        {
            "stage": "scoring",
            "runner": "docker" if digest else outcome.scorer_name,
            "image": image or None,
            "image_digest": digest or None,
            "limits": asdict(limits) if limits is not None else None,  # type: ignore[call-overload]
            # A Docker scoring that returned an outcome exited 0 (any other code raises).
            "exit_code": 0 if digest else None,
            "timed_out": False,
            "oom_killed": False,
            "duration_s": outcome.duration_s,
            "peak_memory_bytes": outcome.peak_memory_bytes,
        }
    ]


def _run_part(run: SandboxRun) -> dict[str, Any]:
    return {
        "stage": run.stage,
        "runner": "docker",
        "image": run.image,
        "image_digest": run.image_digest or None,
        "limits": run.limits or None,
        "exit_code": run.exit_code,
        "timed_out": run.timed_out,
        "oom_killed": run.oom_killed,
        "duration_s": run.duration_s,
        "peak_memory_bytes": run.peak_memory_bytes,
    }


def _timing_part(
    submission: Submission, attempt: Attempt | None, outcome: ScoringOutcome
) -> dict[str, Any]:
    return {
        "queued_at": _iso(attempt.queued_at if attempt else submission.queued_at),
        "started_at": _iso(attempt.started_at if attempt else None),
        "finished_at": _iso(attempt.finished_at if attempt else None),
        "scoring_duration_s": outcome.duration_s,
        "peak_memory_bytes": outcome.peak_memory_bytes,
    }


# --- The worker host, once per process ------------------------------------------------------


# --- Files -----------------------------------------------------------------------------------


def _stored_key(field_file: FieldFile) -> tuple[str, int]:
    # Stored names are never reused for other bytes (the storages don't overwrite), so a
    # name and its size identify the content without reading it.
    return (field_file.name or "", stored_size(field_file))


@functools.lru_cache(maxsize=32)
def _cached_sha256(key: tuple[str, int], field_file: FieldFile) -> str:
    return sha256_of(field_file)


@functools.lru_cache(maxsize=8)
def _truth_summary(key: tuple[str, int], field_file: FieldFile, spec: TaskSpec) -> dict[str, Any]:
    with local_file(field_file) as path:
        return truth_summary(load_truth(path, spec))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
