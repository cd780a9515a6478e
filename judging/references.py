"""Making and scoring a task version's references (competitions/services/references.py).

The references' predictions come from scoring/baselines.py: the constant predictor learns
from the public training file's targets, or from the ground truth's when there is no
training file (a constant tells nothing about any one row); the simple model trains on the
training file only and predicts the public test inputs. Each is then scored by the task's
scorer, the one its submissions go through (the sandbox, or in process), so it gets the
same scores, per-row values and intervals. Idempotent: kinds already recorded for the
version are not made again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from competitions.files import local_copy
from competitions.models import Competition, ReferenceResult, TaskFile, TaskVersion
from competitions.services.references import (
    ReferenceOutcome,
    reference_record,
    references_missing,
)
from judging.cleanup import REFERENCE, attempt_work_dir
from judging.heartbeat import INFRASTRUCTURE_ERRORS
from judging.services import scorer_default
from scoring.baselines import Reference, prediction_write, references_make
from scoring.evaluate import load_truth
from scoring.scorers import Scorer

log = logging.getLogger(__name__)
Status = ReferenceResult.Status


def references_compute(*, competition_id: int, scorer: Scorer | None = None) -> int:
    """Make and score the missing references of the competition's ranked version. Returns
    how many were recorded. `scorer` replaces the task's scorer (tests)."""
    competition = Competition.objects.select_related("task").filter(pk=competition_id).first()
    if competition is None:
        return 0
    missing = references_missing(competition=competition)
    if not missing:
        return 0
    task = competition.task
    version = task.version
    ranked = TaskVersion.objects.filter(task=task, number=version).first()
    truth_file = ranked.ground_truth if ranked is not None else task.ground_truth
    spec = task.spec()
    recorded = 0
    # In HELDOUT_WORK_DIR, like a submission's attempt: the sandbox mounts from there.
    with attempt_work_dir(kind=REFERENCE, object_id=competition_id, attempt=version) as work:
        truth_path = local_copy(truth_file, work / "truth")
        truth = load_truth(truth_path, spec)
        train_path = _public_file(task, TaskFile.Kind.TRAIN, work)
        test_path = _public_file(task, TaskFile.Kind.TEST, work)
        references = references_make(
            spec,
            truth.ids,
            truth_values=truth.values,
            train_path=train_path,
            test_path=test_path,
        )
        del truth  # the scorer reads the ground truth again, in its own place
        chosen = scorer or scorer_default(task=task)
        for reference in references:
            if reference.kind not in missing:
                continue
            outcome = _scored(reference, chosen, truth_path, spec, work)
            if reference_record(competition=competition, task_version=version, outcome=outcome):
                recorded += 1
    return recorded


def _public_file(task, kind: str, work: Path) -> Path | None:
    """A local copy of the task's first public file of `kind`, or None."""
    found = task.files.filter(kind=kind).order_by("pk").first()
    if found is None:
        return None
    return local_copy(found.file, work / kind, name=Path(found.name).name)


def _scored(reference: Reference, scorer: Scorer, truth_path: Path, spec, work: Path):
    if reference.predictions is None:
        return ReferenceOutcome(
            kind=reference.kind, label=reference.label, status=Status.SKIPPED,
            reason=reference.reason,
        )  # fmt: skip
    folder = work / reference.kind
    folder.mkdir()
    path = prediction_write(reference.predictions, folder / "predictions.csv")
    try:
        outcome = scorer.score(
            predictions_path=path, truth_path=truth_path, spec=spec, workdir=folder
        )
    except INFRASTRUCTURE_ERRORS:
        raise  # the task retries
    except Exception as exc:
        log.exception("scoring the %s reference failed", reference.kind)
        return ReferenceOutcome(
            kind=reference.kind, label=reference.label, status=Status.FAILED,
            reason=f"Scoring failed: {exc}",
        )  # fmt: skip
    evaluation = outcome.evaluation
    if not evaluation.ok:
        first = evaluation.problems[0].message if evaluation.problems else "invalid"
        return ReferenceOutcome(
            kind=reference.kind, label=reference.label, status=Status.FAILED,
            reason=f"Its predictions did not validate: {first}",
        )  # fmt: skip
    return ReferenceOutcome(
        kind=reference.kind,
        label=reference.label,
        status=Status.SCORED,
        reason=reference.reason,
        scores=evaluation.scores,
        row_values=evaluation.row_values,
        influence=evaluation.influence,
        scorer_name=outcome.scorer_name,
    )
