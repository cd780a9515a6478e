"""Per-row values whose mean over any resample of the rows gives the metric on that resample.

Contract: `row_influence(name, y_true, y_pred, spec)` returns float32 pseudo-values phi, one
per row, with mean(phi) equal to the metric (up to float error), or None where the metric is
undefined on these rows. For metrics that are a mean over rows (accuracy, log loss, MSE,
MAE) phi is the row's own value, so a resample's mean is exactly the metric on it; RMSE is
the square root of the mean of squared errors (`transform` "sqrt"). For the others (ROC AUC,
average precision, F1, balanced accuracy, R²) phi_i = theta + n * d theta / d w_i, the
first-order expansion of the metric in the rows' weights (its influence function); for ROC
AUC these are DeLong's placement values, so the bootstrap of their mean and DeLong's
variance agree. Pure numpy: no Django, no project app; imported by the scorer sandbox.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from scoring.metrics import _labels

if TYPE_CHECKING:
    from scoring.spec import TaskSpec


@dataclass(frozen=True)
class RowInfluence:
    values: np.ndarray  # float32 pseudo-values, one per row
    transform: str = "identity"  # "identity" | "sqrt", applied to a resample's mean
    strata: np.ndarray | None = None  # int8 true class per row, for DeLong (binary ROC AUC)
    metric: str = ""


def row_influence(
    name: str, y_true: np.ndarray, y_pred: np.ndarray, spec: TaskSpec
) -> RowInfluence | None:
    """The pseudo-values of metric `name` on these aligned rows (see the module docstring)."""
    if len(y_true) == 0:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        result = _FUNCTIONS[name](y_true, y_pred, spec)
    if result is None or not np.all(np.isfinite(result.values)):
        return None
    return replace(result, metric=name)


def _identity(values: np.ndarray, **kwargs: object) -> RowInfluence:
    return RowInfluence(values=np.asarray(values, dtype=np.float32), **kwargs)  # type: ignore[arg-type]


def _accuracy(y_true: np.ndarray, y_pred: np.ndarray, spec: TaskSpec) -> RowInfluence:
    return _identity(_labels(y_true, spec) == _labels(y_pred, spec))


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, spec: TaskSpec) -> RowInfluence:
    truth, correct = _labels(y_true, spec), _labels(y_true, spec) == _labels(y_pred, spec)
    classes, inverse, counts = np.unique(truth, return_inverse=True, return_counts=True)
    recall = np.bincount(inverse, weights=correct, minlength=len(classes)) / counts
    theta = recall.mean()
    n = len(truth)
    return _identity(theta + n * (correct - recall[inverse]) / (len(classes) * counts[inverse]))


def _f1_parts(pos: np.ndarray, pred: np.ndarray) -> tuple[float, np.ndarray]:
    """F1 of one class from boolean truth and prediction, and d F1 / d w per row."""
    denominator = float(pos.sum() + pred.sum())
    if denominator == 0:
        return 0.0, np.zeros(len(pos))
    f1 = 2 * float((pos & pred).sum()) / denominator
    return f1, (2.0 * (pos & pred) - f1 * (pos.astype(float) + pred)) / denominator


def _f1(y_true: np.ndarray, y_pred: np.ndarray, spec: TaskSpec) -> RowInfluence:
    f1, grad = _f1_parts(_labels(y_true, spec) == 1, _labels(y_pred, spec) == 1)
    return _identity(f1 + len(y_true) * grad)


def _f1_macro(y_true: np.ndarray, y_pred: np.ndarray, spec: TaskSpec) -> RowInfluence:
    truth, pred = _labels(y_true, spec), _labels(y_pred, spec)
    parts = [_f1_parts(truth == c, pred == c) for c in np.union1d(truth, pred)]
    theta = float(np.mean([f for f, _ in parts]))
    grad = np.mean([g for _, g in parts], axis=0)
    return _identity(theta + len(truth) * grad)


def _log_loss(y_true: np.ndarray, y_pred: np.ndarray, spec: TaskSpec) -> RowInfluence:
    eps = np.finfo(np.float64).eps
    if spec.task_type == "binary":
        p = np.clip(y_pred.astype(np.float64), eps, 1 - eps)
        return _identity(-(y_true * np.log(p) + (1 - y_true) * np.log1p(-p)))
    normalised = y_pred / y_pred.sum(axis=1, keepdims=True)
    picked = normalised[np.arange(len(y_true)), np.argmax(y_true, axis=1)]
    return _identity(-np.log(np.clip(picked, eps, 1)))


def auc_placements(positive: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray] | None:
    """ROC AUC and DeLong's placement values: for a positive row the share of negatives it
    outscores (ties count half), for a negative row the share of positives that outscore it.

    One sort groups equal scores; every count is then a cumulative sum over the groups and
    a row's placement its group's: the same integers, hence the same floats, as counting
    each row's with binary searches, for a fraction of the time and memory."""
    n = len(positive)
    n1 = int(np.count_nonzero(positive))
    n0 = n - n1
    if n1 == 0 or n0 == 0:
        return None
    order = np.argsort(scores)
    group, sizes = _tie_groups(scores, order)  # group numbers in sorted order for now
    positives = np.cumsum(positive[order], dtype=np.intp)[np.cumsum(sizes) - 1]
    index = np.empty(n, dtype=np.intp)  # the row's group, then its place in `table`
    index[order] = group
    del order, group  # with no ties there are as many groups as rows: keep few such arrays
    index *= 2
    index += positive
    pos_in = np.diff(positives, prepend=0)  # each group's positives and negatives
    neg_in = sizes
    neg_in -= pos_in
    table = np.empty((len(sizes), 2))  # per group: a negative's placement, a positive's
    # (positives above + half the tied ones) / n1, computed column by column in place.
    np.multiply(pos_in, 0.5, out=table[:, 0])
    table[:, 0] += n1 - positives
    table[:, 0] /= n1
    del positives, pos_in
    below = np.cumsum(neg_in)
    below -= neg_in
    np.multiply(neg_in, 0.5, out=table[:, 1])
    table[:, 1] += below
    table[:, 1] /= n0
    del below, neg_in, sizes
    placement = table.ravel().take(index)
    return float(placement[positive].mean()), placement


def _tie_groups(scores: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the scores in this (sorted) order, the number of each one's group of equal scores
    (0, 1, ...), and each group's size."""
    ordered = scores[order]
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    if np.isnan(ordered[-1]):  # sorted last, NaNs tie with each other, as in a sort
        first[1:] &= ~(np.isnan(ordered[1:]) & np.isnan(ordered[:-1]))
    del ordered
    group = np.cumsum(first, dtype=np.intp)
    group -= 1
    return group, np.diff(np.flatnonzero(first), append=len(first))


def _auc_phi(positive: np.ndarray, scores: np.ndarray) -> np.ndarray | None:
    found = auc_placements(positive, scores)
    if found is None:
        return None
    theta, phi = found
    n, n1 = len(positive), int(positive.sum())
    # theta + share * (placement - theta), share n / n1 or n / n0, computed in place.
    phi -= theta
    phi[positive] *= n / n1
    phi[~positive] *= n / (n - n1)
    phi += theta
    return phi


def _roc_auc(y_true: np.ndarray, y_pred: np.ndarray, spec: TaskSpec) -> RowInfluence | None:
    if spec.task_type == "binary":
        positive = y_true >= 0.5
        phi = _auc_phi(positive, y_pred.astype(np.float64, copy=False))
        if phi is None:
            return None
        return _identity(phi, strata=positive.astype(np.int8))
    # Macro one-vs-rest over the classes present, as scoring.metrics.roc_auc.
    per_class = [_auc_phi(y_true[:, j] >= 0.5, y_pred[:, j]) for j in range(y_true.shape[1])]
    present = [phi for phi in per_class if phi is not None]
    return _identity(np.mean(present, axis=0)) if present else None


def _average_precision(y_true: np.ndarray, y_pred: np.ndarray, spec: TaskSpec) -> RowInfluence:
    """AP = mean over positives of the precision at their score (every row scoring at least
    as high counts, as scikit-learn's thresholds do)."""
    positive = (y_true >= 0.5).astype(np.float64)
    n1 = positive.sum()
    if n1 == 0:
        return None  # type: ignore[return-value]
    values, inverse = np.unique(-y_pred.astype(np.float64), return_inverse=True)  # best first
    rows = np.bincount(inverse, minlength=len(values)).astype(float)
    hits = np.bincount(inverse, weights=positive, minlength=len(values))
    at_least, hits_at_least = np.cumsum(rows), np.cumsum(hits)
    precision = hits_at_least / at_least
    theta = float((hits * precision).sum() / n1)
    # d precision(t) / d w_m is (pos_m - precision(t)) / N(t) for every threshold t at or
    # below row m's score, i.e. at this value or later in best-first order.
    s1 = np.cumsum((hits / at_least)[::-1])[::-1]
    s2 = np.cumsum((hits * precision / at_least)[::-1])[::-1]
    grad = (positive * (precision[inverse] - theta) + positive * s1[inverse] - s2[inverse]) / n1
    return _identity(theta + len(positive) * grad)


def _squared(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    errors = (y_pred.astype(np.float64) - y_true) ** 2
    return errors if errors.ndim == 2 else errors[:, None]


def _mse(y_true: np.ndarray, y_pred: np.ndarray, spec: TaskSpec) -> RowInfluence:
    return _identity(_squared(y_true, y_pred).mean(axis=1))


def _mae(y_true: np.ndarray, y_pred: np.ndarray, spec: TaskSpec) -> RowInfluence:
    errors = np.abs(y_pred.astype(np.float64) - y_true)
    return _identity(errors.mean(axis=1) if errors.ndim == 2 else errors)


def _rmse(y_true: np.ndarray, y_pred: np.ndarray, spec: TaskSpec) -> RowInfluence:
    squared = _squared(y_true, y_pred)
    if squared.shape[1] == 1:
        return _identity(squared[:, 0], transform="sqrt")
    # scikit-learn averages the outputs' RMSEs: linearise sqrt per output.
    mse = squared.mean(axis=0)
    root = np.sqrt(mse)
    grad = np.where(root > 0, (squared - mse) / (2 * np.where(root > 0, root, 1)), 0.0)
    return _identity(root.mean() + grad.mean(axis=1))


def _r2(y_true: np.ndarray, y_pred: np.ndarray, spec: TaskSpec) -> RowInfluence | None:
    if len(y_true) < 2:
        return None
    squared = _squared(y_true, y_pred)
    truth = y_true.astype(np.float64)
    truth = truth if truth.ndim == 2 else truth[:, None]
    spread = (truth - truth.mean(axis=0)) ** 2
    a, b = squared.mean(axis=0), spread.mean(axis=0)
    if np.any(b == 0):
        return None
    theta = 1 - a / b
    # theta = 1 - A/B: d theta = -(dA)/B + A (dB)/B² (the mean's own influence on B is 0).
    grad = -(squared - a) / b + a * (spread - b) / b**2
    return _identity(theta.mean() + grad.mean(axis=1))


_FUNCTIONS = {
    "accuracy": _accuracy,
    "balanced_accuracy": _balanced_accuracy,
    "f1": _f1,
    "f1_macro": _f1_macro,
    "log_loss": _log_loss,
    "roc_auc": _roc_auc,
    "average_precision": _average_precision,
    "rmse": _rmse,
    "mse": _mse,
    "mae": _mae,
    "r2": _r2,
}


def split_influence(
    y_true: np.ndarray, y_pred: np.ndarray, masks: dict[str, np.ndarray], spec: TaskSpec
) -> dict[str, RowInfluence]:
    """The primary metric's pseudo-values on every split's rows (in ground-truth order);
    a split where the metric is undefined is left out."""
    found: dict[str, RowInfluence] = {}
    for split, mask in masks.items():
        same = next((s for s in found if np.array_equal(masks[s], mask)), None)
        if same is not None:
            found[split] = found[same]
            continue
        rows = row_influence(spec.primary_metric, y_true[mask], y_pred[mask], spec)
        if rows is not None:
            found[split] = rows
    return found


def influence_dump(splits: dict[str, RowInfluence]) -> bytes:
    """An .npz of the splits' pseudo-values: float32 "<split>", optional int8
    "<split>_strata", and "<split>_metric" and "<split>_transform" as strings (nothing
    pickled), stored uncompressed."""
    arrays: dict[str, np.ndarray] = {}
    for split, rows in splits.items():
        arrays[f"{split}_metric"] = np.array(rows.metric)
        arrays[split] = rows.values.astype(np.float32, copy=False)
        arrays[f"{split}_transform"] = np.array(rows.transform)
        if rows.strata is not None:
            arrays[f"{split}_strata"] = rows.strata.astype(np.int8, copy=False)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def influence_load(data: bytes) -> dict[str, RowInfluence]:
    """What influence_dump wrote, by split. Raises ValueError."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"unreadable pseudo-values: {exc}") from exc
    splits = {}
    for split in ("public", "private"):
        if split not in arrays:
            continue
        values = arrays[split]
        if values.dtype != np.float32 or values.ndim != 1:
            raise ValueError(f"the {split} pseudo-values are not a float32 vector")
        strata = arrays.get(f"{split}_strata")
        transform = str(arrays.get(f"{split}_transform", "identity"))
        metric = str(arrays.get(f"{split}_metric", ""))
        splits[split] = RowInfluence(values, transform=transform, strata=strata, metric=metric)
    return splits
