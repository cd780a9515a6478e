"""The constant predictor: the baseline a suite's normalized scores count as 0.

Contract: `constant_predictions` gives, for every row of `y_true` (aligned as
scoring.metrics describes), the one prediction that ignores the features, fitted on
`fit_on` (the same rows unless given, e.g. a task's training labels): the class priors for
binary and probabilities tasks, the most frequent class for multiclass ones (the first in
spec.classes on a tie), the mean of each target for regression, as scikit-learn's
DummyClassifier(strategy="prior") and DummyRegressor do. `constant_score` is a metric of
those predictions, None when undefined (scoring.metrics.compute_metric).
"""

from __future__ import annotations

import numpy as np

from scoring.metrics import compute_metric
from scoring.spec import TaskSpec


def constant_predictions(
    y_true: np.ndarray, spec: TaskSpec, *, fit_on: np.ndarray | None = None
) -> np.ndarray:
    seen = y_true if fit_on is None else fit_on
    if len(seen) == 0:
        raise ValueError("The constant predictor is fitted on at least one row.")
    n = len(y_true)
    if spec.task_type == "binary":
        return np.full(n, float(np.mean(seen)))
    if spec.task_type == "probabilities":
        priors = np.mean(np.asarray(seen, dtype=np.float64), axis=0)
        return np.tile(priors, (n, 1))
    if spec.task_type == "multiclass":
        counts = [int(np.sum(seen == label)) for label in spec.classes]
        return np.full(n, spec.classes[int(np.argmax(counts))], dtype=object)
    means = np.mean(np.asarray(seen, dtype=np.float64), axis=0)
    return np.broadcast_to(means, np.shape(y_true)).copy()


def constant_score(
    metric: str, *, y_true: np.ndarray, spec: TaskSpec, fit_on: np.ndarray | None = None
) -> float | None:
    """The constant predictor's `metric` on these rows (see the module docstring)."""
    predictions = constant_predictions(y_true, spec, fit_on=fit_on)
    return compute_metric(metric, y_true=y_true, y_pred=predictions, spec=spec)
