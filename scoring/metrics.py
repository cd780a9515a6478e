"""Metrics as pure functions over aligned numpy arrays, built on scikit-learn.

The arrays are those produced by scoring.validation (see ValidationResult.aligned):
- binary: y_true is 0.0/1.0 (1 = the positive class, classes[1]); y_pred is the
  probability of the positive class. Thresholded metrics predict positive at >= 0.5.
- multiclass: both are arrays of class labels (strings from spec.classes).
- regression: float arrays, shape (n,) or (n, k); multi-output metrics average uniformly.
- probabilities: both are (n, k) float arrays over spec.classes; y_true is one-hot.
  Predicted rows are rescaled to sum to exactly 1 before scoring (validation allows
  a small tolerance).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from types import ModuleType

    from scoring.spec import TaskSpec

CLASSIFICATION = frozenset({"binary", "multiclass", "probabilities"})
SCORED = frozenset({"binary", "probabilities"})


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    higher_is_better: bool
    task_types: frozenset[str]
    fn: Callable[..., float]


class UndefinedMetric(Exception):
    """The metric has no value on these rows, e.g. ROC AUC when only one class is present."""


def _skm() -> ModuleType:
    """scikit-learn's metrics, imported on first use. Importing scikit-learn takes about a
    second (it pulls in scipy.stats and pandas), which every sandboxed scoring would pay
    at start; this way an invalid file, or a task whose metrics need only numpy, never
    does."""
    from sklearn import metrics

    return metrics


def _labels(y: np.ndarray, spec: TaskSpec) -> np.ndarray:
    """Hard class indices (into spec.classes) for any classification array."""
    if spec.task_type == "binary":
        return (y >= 0.5).astype(np.int8)
    if spec.task_type == "probabilities":
        return np.argmax(y, axis=1)
    import pandas as pd  # imported on use, like scikit-learn: see _skm()

    return pd.Categorical(y, categories=list(spec.classes)).codes


def _normalised(y_pred: np.ndarray) -> np.ndarray:
    return y_pred / y_pred.sum(axis=1, keepdims=True)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray, *, spec: TaskSpec) -> float:
    return float(np.mean(_labels(y_true, spec) == _labels(y_pred, spec)))


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, *, spec: TaskSpec) -> float:
    return _skm().balanced_accuracy_score(_labels(y_true, spec), _labels(y_pred, spec))


def f1(y_true: np.ndarray, y_pred: np.ndarray, *, spec: TaskSpec) -> float:
    """F1 of the positive class; 0 when there are no positives to find or predicted."""
    return _skm().f1_score(_labels(y_true, spec), _labels(y_pred, spec), zero_division=0)


def f1_macro(y_true: np.ndarray, y_pred: np.ndarray, *, spec: TaskSpec) -> float:
    """Unweighted mean F1 over the classes present in y_true or y_pred."""
    return _skm().f1_score(
        _labels(y_true, spec), _labels(y_pred, spec), average="macro", zero_division=0
    )


def log_loss(y_true: np.ndarray, y_pred: np.ndarray, *, spec: TaskSpec) -> float:
    if spec.task_type == "binary":
        return _skm().log_loss(y_true, y_pred, labels=[0.0, 1.0])
    k = len(spec.classes)
    return _skm().log_loss(np.argmax(y_true, axis=1), _normalised(y_pred), labels=list(range(k)))


def roc_auc(y_true: np.ndarray, y_pred: np.ndarray, *, spec: TaskSpec) -> float:
    """Binary ROC AUC; for probabilities the macro mean of one-vs-rest AUCs over the
    classes that occur in y_true (an absent class has no AUC)."""
    if spec.task_type == "binary":
        if y_true.min() == y_true.max():
            raise UndefinedMetric
        return _skm().roc_auc_score(y_true, y_pred)
    present = [j for j in range(y_true.shape[1]) if 0 < y_true[:, j].sum() < len(y_true)]
    if not present:
        raise UndefinedMetric
    return float(np.mean([_skm().roc_auc_score(y_true[:, j], y_pred[:, j]) for j in present]))


def average_precision(y_true: np.ndarray, y_pred: np.ndarray, *, spec: TaskSpec) -> float:
    if y_true.max() == 0:
        raise UndefinedMetric
    return _skm().average_precision_score(y_true, y_pred)


def rmse(y_true: np.ndarray, y_pred: np.ndarray, *, spec: TaskSpec) -> float:
    return _skm().root_mean_squared_error(y_true, y_pred)


def mse(y_true: np.ndarray, y_pred: np.ndarray, *, spec: TaskSpec) -> float:
    return _skm().mean_squared_error(y_true, y_pred)


def mae(y_true: np.ndarray, y_pred: np.ndarray, *, spec: TaskSpec) -> float:
    return _skm().mean_absolute_error(y_true, y_pred)


def r2(y_true: np.ndarray, y_pred: np.ndarray, *, spec: TaskSpec) -> float:
    """Undefined (None) for fewer than two rows or a constant target."""
    if len(y_true) < 2:
        raise UndefinedMetric
    return _skm().r2_score(y_true, y_pred, force_finite=False)


def _metric(
    name: str, label: str, higher: bool, types: frozenset[str], fn: Callable[..., float]
) -> Metric:
    return Metric(name=name, label=label, higher_is_better=higher, task_types=types, fn=fn)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        _metric("accuracy", "Accuracy", True, CLASSIFICATION, accuracy),
        _metric("balanced_accuracy", "Balanced accuracy", True, CLASSIFICATION, balanced_accuracy),
        _metric("f1", "F1 (positive class)", True, frozenset({"binary"}), f1),
        _metric("f1_macro", "Macro F1", True, CLASSIFICATION, f1_macro),
        _metric("log_loss", "Log loss", False, SCORED, log_loss),
        _metric("roc_auc", "ROC AUC", True, SCORED, roc_auc),
        _metric(
            "average_precision", "Average precision", True, frozenset({"binary"}), average_precision
        ),
        _metric("rmse", "RMSE", False, frozenset({"regression"}), rmse),
        _metric("mse", "MSE", False, frozenset({"regression"}), mse),
        _metric("mae", "MAE", False, frozenset({"regression"}), mae),
        _metric("r2", "R²", True, frozenset({"regression"}), r2),
    ]
}


# Each metric's best possible value: a perfect prediction's score (the 1 of normalized
# scores: normalized_score here, and a suite's, scoring.suites).
BEST_POSSIBLE: dict[str, float] = {
    "accuracy": 1.0,
    "balanced_accuracy": 1.0,
    "f1": 1.0,
    "f1_macro": 1.0,
    "log_loss": 0.0,
    "roc_auc": 1.0,
    "average_precision": 1.0,
    "rmse": 0.0,
    "mse": 0.0,
    "mae": 0.0,
    "r2": 1.0,
}


# Each metric's attainable values. An interval drawn from linearized pseudo-values
# (scoring.influence: ROC AUC, F1, R², ...) can stray past them on a small test set, which
# would show an AUC of 1.11; scoring.statistics.bootstrap_interval clips it to them.
RANGE: dict[str, tuple[float, float]] = {
    "accuracy": (0.0, 1.0),
    "balanced_accuracy": (0.0, 1.0),
    "f1": (0.0, 1.0),
    "f1_macro": (0.0, 1.0),
    "log_loss": (0.0, float("inf")),
    "roc_auc": (0.0, 1.0),
    "average_precision": (0.0, 1.0),
    "rmse": (0.0, float("inf")),
    "mse": (0.0, float("inf")),
    "mae": (0.0, float("inf")),
    "r2": (float("-inf"), 1.0),
}


def normalized_score(metric: Metric, score: float | None, constant: float | None) -> float | None:
    """(score - constant) / (perfect - constant): 0 is the constant predictor, 1 perfect,
    negative worse than the constant. The difference takes the metric's direction, so a
    lower-is-better metric normalises the same way. None when unknown or when the
    constant is already perfect."""
    perfect = BEST_POSSIBLE.get(metric.name)
    if score is None or constant is None or perfect is None or perfect == constant:
        return None
    return (score - constant) / (perfect - constant)


def metric_get(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        known = ", ".join(sorted(METRICS))
        raise KeyError(f'Unknown metric "{name}"; known metrics: {known}.') from None


def metrics_for_task_type(task_type: str) -> list[Metric]:
    return [m for m in METRICS.values() if task_type in m.task_types]


def compute_metric(
    name: str, *, y_true: np.ndarray, y_pred: np.ndarray, spec: TaskSpec
) -> float | None:
    """The metric's value, or None when it is undefined on these rows (never NaN)."""
    metric = metric_get(name)
    if spec.task_type not in metric.task_types:
        raise ValueError(f'Metric "{name}" does not apply to {spec.task_type} tasks.')
    if len(y_true) == 0:
        return None
    try:
        # sklearn warns about ill-defined values; we report those as None instead.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(metric.fn(y_true, y_pred, spec=spec))
    except UndefinedMetric:
        return None
    return value if np.isfinite(value) else None
