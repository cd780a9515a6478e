"""Checking a bundle's data files (competitions/bundles.py reads the yaml): each ground truth
against the task's spec, and each sample submission against the ground truth it is for.

Every problem is prefixed with the yaml key it is about and the file's name, all reported
at once. docs/bundle.md, "What is checked".
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
from django.conf import settings

from competitions.models import TaskFile
from scoring.validation import ValidationResult, check_ground_truth, validate_predictions

if TYPE_CHECKING:
    from competitions.bundles import Bundle


def data_problems(bundle: Bundle) -> list[str]:
    """The ground truths (the task's, and each phase's own) must validate, and every sample
    submission must validate against the ground truth of the phase it is released with
    when that phase has its own, and against the task's otherwise."""
    limit = settings.HELDOUT_MAX_PROBLEMS
    problems: list[str] = []
    ids: dict[str | None, pa.ChunkedArray | None] = {}
    for i, phase in enumerate(bundle.phases):
        if phase.ground_truth is not None:
            own = check_ground_truth(phase.ground_truth, spec=bundle.spec, max_problems=limit)
            problems += file_problems(f"phases[{i}].ground_truth", phase.ground_truth, own.result)
            ids[phase.name] = own.ids if own.result.ok else None
    truth = check_ground_truth(bundle.ground_truth, spec=bundle.spec, max_problems=limit)
    if not truth.result.ok or truth.ids is None:
        return file_problems("task.ground_truth", bundle.ground_truth, truth.result) + problems
    for i, item in enumerate(bundle.files):
        if item.kind != TaskFile.Kind.SAMPLE:
            continue
        truth_ids = ids.get(item.released_with, truth.ids) if item.released_with else truth.ids
        if truth_ids is None:
            continue  # its phase's ground truth has problems of its own, reported above
        result = validate_predictions(
            item.path, spec=bundle.spec, truth_ids=truth_ids, max_problems=limit
        )
        problems += file_problems(f"task.files[{i}] (sample submission)", item.path, result)
    return problems


def file_problems(key: str, path: Path, result: ValidationResult) -> list[str]:
    problems = [f"{key}: {path.name}: {p.message}" for p in result.problems]
    hidden = result.total_problems - len(result.problems)
    if hidden > 0:
        problems.append(f"{key}: {path.name}: … and {hidden} more problems.")
    return problems
