"""Reference predictions for a task: the constant predictor and a small scikit-learn model.

Contract: `references_make(spec, test_ids, ...)` returns one `Reference` per kind
("constant", "model"), each either a prediction table in the submission's format (the id
column, then the target columns, one row per test id) or the reason it was not made. The
tables are then scored like any submission (the caller's business), so references get the
same scores, per-row values and intervals.

- The constant predictor predicts the same thing for every row: the class prior (binary:
  the positive class's share, as a probability; probabilities: the prior of each class),
  the majority class (multiclass) or the mean (regression). It is learnt from the public
  training file's targets when it has them; otherwise from the ground truth's (as AMLB
  does): a constant learns one number per target, so it tells nothing about any test row.
- The model is trained on the public training file only (its numeric columns that the test
  inputs file also has; missing values imputed with the median, standardised) and predicts
  the test inputs file: logistic regression for classification, ridge regression for
  regression; deterministic (no random state is involved). Without either file, or without
  a usable feature or target, it is skipped with the reason.

`normalized_score` (scoring.metrics) places a score between the constant predictor (0) and
a perfect score (1), as AMLB reports, whatever the metric's direction.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.constant import constant_predictions
from scoring.metrics import normalized_score
from scoring.spec import TaskSpec, canonical_label

__all__ = ["normalized_score", "references_make"]
KINDS = ("constant", "model")
LABELS = {"constant": "Constant predictor", "model": "Simple model"}
# A training file larger than this is not read for a reference (the worker's memory).
MAX_TRAIN_BYTES = 200 << 20
MAX_TRAIN_ROWS = 500_000


@dataclass(frozen=True)
class Reference:
    kind: str  # one of KINDS
    label: str  # what the board calls it, e.g. "Constant predictor (class prior)"
    predictions: pd.DataFrame | None  # the submission; None when skipped
    reason: str = ""  # why it was skipped, or where it learnt from

    @property
    def made(self) -> bool:
        return self.predictions is not None


class Unusable(Exception):
    """A file or column can't serve a reference; the message says why, for the board."""


def references_make(
    spec: TaskSpec,
    test_ids: np.ndarray,
    *,
    truth_values: np.ndarray,
    train_path: Path | None = None,
    test_path: Path | None = None,
) -> list[Reference]:
    """The references of a task (see the module's contract). `truth_values` are the ground
    truth's targets aligned like scoring.validation's (used only for the constant's prior
    when the training file gives none); `test_ids` the test set's ids."""
    train: pd.DataFrame | None = None
    train_problem = "the task has no public training file"
    if train_path is not None:
        try:
            train = read_table(train_path)
        except Unusable as exc:
            train, train_problem = None, f"the training file can't be used: {exc}"
    return [
        _constant_reference(spec, test_ids, truth_values, train),
        _model_reference(spec, train, train_problem, test_path),
    ]


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (optionally gzipped) or Parquet file, within the size limits."""
    size = path.stat().st_size
    if size > MAX_TRAIN_BYTES:
        raise Unusable(f"it is larger than {MAX_TRAIN_BYTES >> 20} MB")
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, nrows=MAX_TRAIN_ROWS + 1, low_memory=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise Unusable(f"it could not be read as a table ({exc})") from None
    if len(frame) > MAX_TRAIN_ROWS:
        raise Unusable(f"it has more than {MAX_TRAIN_ROWS:,} rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


# --- The constant predictor --------------------------------------------------------------


def _constant_reference(
    spec: TaskSpec, test_ids: np.ndarray, truth_values: np.ndarray, train: pd.DataFrame | None
) -> Reference:
    source = "the ground truth"
    targets = None
    if train is not None:
        try:
            targets = training_targets(spec, train)
            source = "the training file"
        except Unusable:
            targets = None
    if targets is None:
        targets = truth_values
    what = {"binary": "class prior", "multiclass": "majority class", "probabilities": "class prior"}
    label = f"{LABELS['constant']} ({what.get(spec.task_type, 'mean')})"
    values = constant_values(spec, targets)
    table = prediction_table(
        spec, test_ids, np.broadcast_to(values, (len(test_ids), *values.shape))
    )
    return Reference("constant", label, table, reason=f"learnt from {source}")


def constant_values(spec: TaskSpec, targets: np.ndarray) -> np.ndarray:
    """What the constant predictor (scoring.constant) predicts for every row, fitted on
    targets aligned like scoring.validation's (binary: 0/1; multiclass: labels;
    probabilities: one-hot rows; regression: floats, (n,) or (n, k))."""
    if len(targets) == 0:
        raise ValueError("No targets to learn a constant from.")
    return np.asarray(constant_predictions(targets[:1], spec, fit_on=targets)[0])


# --- The model ---------------------------------------------------------------------------


def _model_reference(
    spec: TaskSpec, train: pd.DataFrame | None, train_problem: str, test_path: Path | None
) -> Reference:
    classifier = spec.task_type != "regression"
    label = f"{LABELS['model']} ({'logistic' if classifier else 'ridge'} regression)"
    if train is None:
        return Reference("model", label, None, reason=train_problem)
    if test_path is None:
        return Reference("model", label, None, reason="the task has no public test inputs file")
    try:
        test = read_table(test_path)
        table = model_predictions(spec, train, test)
    except Unusable as exc:
        return Reference("model", label, None, reason=str(exc))
    return Reference("model", label, table, reason="trained on the training file")


def model_predictions(spec: TaskSpec, train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """The model's predictions for `test`'s rows (see the module's contract). Raises
    Unusable when the files don't allow one."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if spec.id_column not in test.columns:
        raise Unusable(f'the test inputs file has no id column "{spec.id_column}"')
    y = training_targets(spec, train)
    features = _features(spec, train, test)
    x_train = train[features].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    x_test = test[features].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    classifier = spec.task_type != "regression"
    if classifier:
        labels = _label_indices(spec, y)
        if len(np.unique(labels)) < 2:
            raise Unusable("the training file's targets hold a single class")
        estimator = LogisticRegression(max_iter=1000)
    else:
        labels = np.asarray(y, dtype=np.float64)
        estimator = Ridge(alpha=1.0)
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and all-missing-column warnings
        model.fit(x_train, labels)
        values = model.predict_proba(x_test) if classifier else model.predict(x_test)
    if classifier:
        values = _class_probabilities(spec, values, model.classes_)
    ids = test[spec.id_column].astype(str).to_numpy()
    return prediction_table(spec, ids, values)


def _features(spec: TaskSpec, train: pd.DataFrame, test: pd.DataFrame) -> list[str]:
    excluded = {spec.id_column, *spec.target_columns, spec.usage_column}
    shared = [c for c in train.columns if c not in excluded and c in test.columns]
    numeric = [
        c
        for c in shared
        if pd.to_numeric(train[c], errors="coerce").notna().any()
        and pd.api.types.is_numeric_dtype(train[c])
    ]
    if not numeric:
        raise Unusable("the training and test files share no numeric feature column")
    return numeric


def training_targets(spec: TaskSpec, train: pd.DataFrame) -> np.ndarray:
    """The training file's targets, aligned like scoring.validation's ground truth. Raises
    Unusable when its target columns are missing or hold values outside the task's."""
    if spec.task_type == "probabilities" and len(spec.target_columns) > 1:
        missing = [c for c in spec.target_columns if c not in train.columns]
        if missing:
            raise Unusable(f'the training file has no target column "{missing[0]}"')
        values = train[list(spec.target_columns)].apply(pd.to_numeric, errors="coerce")
        if values.isna().any().any():
            raise Unusable("the training file's target columns hold missing or text values")
        return values.to_numpy(np.float64)
    missing = [c for c in spec.target_columns if c not in train.columns]
    if missing:
        raise Unusable(f'the training file has no target column "{missing[0]}"')
    if spec.task_type == "regression":
        values = train[list(spec.target_columns)].apply(pd.to_numeric, errors="coerce")
        if values.isna().any().any():
            raise Unusable("the training file's targets hold missing or text values")
        array = values.to_numpy(np.float64)
        return array[:, 0] if array.shape[1] == 1 else array
    labels = train[spec.target_columns[0]].astype(str).map(canonical_label).to_numpy()
    known = {canonical_label(c): c for c in spec.classes}
    if not all(label in known for label in labels):
        raise Unusable("the training file's targets hold labels that are not the task's classes")
    named = np.array([known[label] for label in labels], dtype=object)
    if spec.task_type == "binary":
        return (named == spec.classes[1]).astype(np.float64)
    if spec.task_type == "probabilities":  # one target column holding labels: one-hot
        return (named[:, None] == np.array(spec.classes, dtype=object)[None, :]).astype(float)
    return named


def _label_indices(spec: TaskSpec, y: np.ndarray) -> np.ndarray:
    """Class indices into spec.classes, from targets as training_targets gives them."""
    if spec.task_type == "binary":
        return y.astype(np.int64)
    if spec.task_type == "probabilities":
        return np.argmax(y, axis=1)
    index = {c: i for i, c in enumerate(spec.classes)}
    return np.array([index[c] for c in y], dtype=np.int64)


def _class_probabilities(spec: TaskSpec, proba: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Per-class probabilities over every class of the spec (0 for a class the training
    file never had), as the submission's format needs them."""
    full = np.zeros((len(proba), len(spec.classes)), dtype=np.float64)
    full[:, seen.astype(np.int64)] = proba
    if spec.task_type == "binary":
        return full[:, 1]
    if spec.task_type == "multiclass":
        return np.array(spec.classes, dtype=object)[np.argmax(full, axis=1)]
    # A little floor keeps the log loss finite on a class the model gave 0.
    full = np.clip(full, 1e-6, 1.0)
    return full / full.sum(axis=1, keepdims=True)


# --- Output --------------------------------------------------------------------------------


def prediction_table(spec: TaskSpec, ids: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """A submission: the id column, then the target columns holding `values` ((n,) for one
    target column, (n, k) for k)."""
    frame = pd.DataFrame({spec.id_column: np.asarray(ids, dtype=object).astype(str)})
    values = np.asarray(values)
    if values.ndim == 1:
        frame[spec.target_columns[0]] = values
    else:
        for j, column in enumerate(spec.target_columns):
            frame[column] = values[:, j]
    return frame


def prediction_write(table: pd.DataFrame, path: Path) -> Path:
    """Write a reference's predictions as CSV (floats in full precision)."""
    table.to_csv(path, index=False, float_format="%.17g")
    return path
