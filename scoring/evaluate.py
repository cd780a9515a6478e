"""Score a validated submission against the ground truth, overall and per split."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa

from scoring.influence import RowInfluence, split_influence
from scoring.metrics import compute_metric
from scoring.spec import TaskSpec
from scoring.validation import (
    Problem,
    TruthCheck,
    check_ground_truth,
    release_arrow_memory,
    validate_predictions,
)

ROW_KINDS = {
    "binary": "correct",
    "multiclass": "correct",
    "probabilities": "log_loss",
    "regression": "squared_error",
}
SPLITS = ("public", "private")


@dataclass
class Truth:
    id_text: pa.Array  # the ids as Arrow strings, in ground-truth file order
    values: np.ndarray  # aligned like ValidationResult.aligned
    splits: dict[str, np.ndarray]  # "public"/"private" -> boolean mask over the rows

    @cached_property
    def ids(self) -> np.ndarray:
        """The ids as a numpy StringDType array (elements are str), built on first use:
        scoring itself aligns and hashes the Arrow ones."""
        return _strings(self.id_text)


@dataclass
class Evaluation:
    problems: list[Problem]
    total_problems: int
    scores: dict[str, dict[str, float | None]]  # split -> metric name -> value; {} when invalid
    row_values: np.ndarray | None  # float32 per ground-truth row, see row_values()
    row_kind: str  # "correct" | "log_loss" | "squared_error"
    # What a scorer container reports about itself (library versions, the split's identity;
    # scoring.cli.library_versions and truth_summary); empty when scored in process.
    provenance: dict[str, Any] = field(default_factory=dict)
    # The primary metric's per-row pseudo-values on each split, for the leaderboard's
    # intervals (scoring.influence); empty when invalid or from an older scorer image.
    influence: dict[str, RowInfluence] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.total_problems == 0 and not self.problems


def load_truth(path: str | os.PathLike[str], spec: TaskSpec) -> Truth:
    """Read and check a ground-truth file. Raises ValueError naming its problems."""
    check = check_ground_truth(path, spec=spec)
    release_arrow_memory()  # the file's other columns are gone; Arrow memory is reused next
    return _truth_from(check)


def _truth_from(check: TruthCheck) -> Truth:
    result = check.result
    if not result.ok or check.ids is None or result.aligned is None:
        listed = "\n".join(f"- {p.message}" for p in result.problems)
        raise ValueError(f"The ground truth has {result.total_problems} problem(s):\n{listed}")
    if check.public is None:
        # Without a usage column every row counts for both leaderboards.
        everything = np.ones(len(check.ids), dtype=bool)
        splits = {"public": everything, "private": everything.copy()}
    else:
        splits = {"public": check.public, "private": ~check.public}
    ids = check.ids.combine_chunks()
    if not pa.types.is_string(ids.type):  # large_string from Parquet
        ids = ids.cast(pa.string())
    return Truth(id_text=ids, values=result.aligned, splits=splits)


def _strings(array: pa.Array, piece: int = 1 << 16) -> np.ndarray:
    """Arrow strings as a numpy StringDType array, converted in pieces to bound the memory
    taken by the temporary Python str objects."""
    out = np.empty(len(array), dtype=np.dtypes.StringDType())
    for offset in range(0, len(array), piece):
        values = array.slice(offset, piece).to_numpy(zero_copy_only=False)
        out[offset : offset + len(values)] = values
    return out


def evaluate(
    *,
    predictions_path: str | os.PathLike[str],
    truth: Truth,
    spec: TaskSpec,
    max_problems: int = 100,
) -> Evaluation:
    kind = ROW_KINDS[spec.task_type]
    result = validate_predictions(
        predictions_path, spec=spec, truth_ids=truth.id_text, max_problems=max_problems
    )
    if not result.ok or result.aligned is None:
        return Evaluation(result.problems, result.total_problems, {}, None, kind)
    scores = split_scores(truth, result.aligned, spec)
    rows = row_values(truth.values, result.aligned, spec)
    influence = split_influence(truth.values, result.aligned, truth.splits, spec)
    return Evaluation([], 0, scores, rows, kind, influence=influence)


def split_scores(
    truth: Truth, y_pred: np.ndarray, spec: TaskSpec
) -> dict[str, dict[str, float | None]]:
    """Every metric of the spec on every split's rows."""
    scores: dict[str, dict[str, float | None]] = {}
    done: list[tuple[np.ndarray, dict[str, float | None]]] = []
    for split, mask in truth.splits.items():
        # Splits with the same rows (no usage column) are scored once.
        same = next((values for seen, values in done if np.array_equal(seen, mask)), None)
        if same is None:
            y_true, y_split = truth.values, y_pred
            if not mask.all():
                y_true, y_split = y_true[mask], y_pred[mask]
            same = {
                name: compute_metric(name, y_true=y_true, y_pred=y_split, spec=spec)
                for name in spec.metrics
            }
            done.append((mask, same))
        scores[split] = dict(same)
    return scores


def row_values(y_true: np.ndarray, y_pred: np.ndarray, spec: TaskSpec) -> np.ndarray:
    """Per-row float32 values in ground-truth order: 1.0/0.0 correctness for binary (at 0.5)
    and multiclass, log loss for probabilities, squared error (mean over targets) for
    regression."""
    if spec.task_type == "binary":
        return ((y_pred >= 0.5) == (y_true >= 0.5)).astype(np.float32)
    if spec.task_type == "multiclass":
        return (y_pred == y_true).astype(np.float32)
    if spec.task_type == "probabilities":
        normalised = y_pred / y_pred.sum(axis=1, keepdims=True)
        picked = normalised[np.arange(len(y_true)), np.argmax(y_true, axis=1)]
        eps = np.finfo(np.float64).eps
        return -np.log(np.clip(picked, eps, 1)).astype(np.float32)
    errors = (y_pred - y_true) ** 2
    return (errors.mean(axis=1) if errors.ndim == 2 else errors).astype(np.float32)
