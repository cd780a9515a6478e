"""Metrics against values worked out by hand (the working is in the comments)."""

import math

import numpy as np
import pytest

from scoring.metrics import METRICS, compute_metric, metric_get, metrics_for_task_type
from scoring.spec import TaskSpec


def spec_for(task_type, metric, **extra):
    targets = {"probabilities": ("a", "b", "c"), "regression": ("y",)}.get(task_type, ("t",))
    return TaskSpec(
        id_column="id",
        target_columns=targets,
        task_type=task_type,
        primary_metric=metric,
        **extra,
    )


# Binary: truth 0,0,1,1; scores 0.1,0.6,0.4,0.9 -> labels at 0.5: 0,1,0,1 (one hit per class).
BINARY_TRUE = np.array([0.0, 0.0, 1.0, 1.0])
BINARY_PRED = np.array([0.1, 0.6, 0.4, 0.9])
# Multiclass: truth a,a,b,c; predicted a,b,b,a.
MULTI_TRUE = np.array(["a", "a", "b", "c"], dtype=object)
MULTI_PRED = np.array(["a", "b", "b", "a"], dtype=object)
# Probabilities: true classes a,b,c,a; argmax predicts a,b,c,b.
PROBA_TRUE = np.eye(3)[[0, 1, 2, 0]]
PROBA_PRED = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.2, 0.5, 0.3]])
# Regression: errors 0, 1, -1, 2 around a mean truth of 2.5.
REG_TRUE = np.array([1.0, 2.0, 3.0, 4.0])
REG_PRED = np.array([1.0, 3.0, 2.0, 6.0])

CASES = [
    ("binary", "accuracy", BINARY_TRUE, BINARY_PRED, 0.5),
    ("binary", "balanced_accuracy", BINARY_TRUE, BINARY_PRED, 0.5),
    ("binary", "f1", BINARY_TRUE, BINARY_PRED, 0.5),  # precision 1/2, recall 1/2
    ("binary", "f1_macro", BINARY_TRUE, BINARY_PRED, 0.5),
    ("binary", "roc_auc", BINARY_TRUE, BINARY_PRED, 0.75),  # 3 of 4 pairs ordered
    ("binary", "log_loss", BINARY_TRUE, BINARY_PRED, -(math.log(0.9) + math.log(0.4)) / 2),
    ("binary", "average_precision", BINARY_TRUE, BINARY_PRED, (1 + 2 / 3) / 2),
    ("multiclass", "accuracy", MULTI_TRUE, MULTI_PRED, 0.5),
    ("multiclass", "balanced_accuracy", MULTI_TRUE, MULTI_PRED, (1 / 2 + 1 + 0) / 3),
    ("multiclass", "f1_macro", MULTI_TRUE, MULTI_PRED, (1 / 2 + 2 / 3 + 0) / 3),
    ("probabilities", "accuracy", PROBA_TRUE, PROBA_PRED, 0.75),
    (
        "probabilities",
        "log_loss",
        PROBA_TRUE,
        PROBA_PRED,
        -(math.log(0.7) + math.log(0.8) + math.log(0.4) + math.log(0.2)) / 4,
    ),
    ("probabilities", "roc_auc", PROBA_TRUE, PROBA_PRED, (3 / 4 + 1 + 1) / 3),
    ("regression", "mse", REG_TRUE, REG_PRED, 6 / 4),
    ("regression", "rmse", REG_TRUE, REG_PRED, math.sqrt(6 / 4)),
    ("regression", "mae", REG_TRUE, REG_PRED, 4 / 4),
    ("regression", "r2", REG_TRUE, REG_PRED, 1 - 6 / 5),
]


@pytest.mark.parametrize(("task_type", "name", "y_true", "y_pred", "expected"), CASES)
def test_it_matches_the_hand_computed_value(task_type, name, y_true, y_pred, expected):
    spec = spec_for(task_type, name, classes=("a", "b", "c") if task_type == "multiclass" else ())

    value = compute_metric(name, y_true=y_true, y_pred=y_pred, spec=spec)

    assert value == pytest.approx(expected)
    assert isinstance(value, float)


def test_it_averages_regression_targets_uniformly():
    y_true = np.array([[1.0, 10.0], [2.0, 20.0]])
    y_pred = np.array([[1.0, 10.0], [3.0, 20.0]])
    spec = TaskSpec(
        id_column="id", target_columns=("u", "v"), task_type="regression", primary_metric="mae"
    )

    assert compute_metric("mae", y_true=y_true, y_pred=y_pred, spec=spec) == 0.25
    assert compute_metric("rmse", y_true=y_true, y_pred=y_pred, spec=spec) == pytest.approx(
        math.sqrt(0.5) / 2
    )


def test_it_rescales_probability_rows_that_nearly_sum_to_one():
    y_pred = np.array([[0.5, 0.25, 0.2505], [0.2, 0.6, 0.2]])
    y_true = np.eye(3)[[0, 1]]
    spec = spec_for("probabilities", "log_loss")

    value = compute_metric("log_loss", y_true=y_true, y_pred=y_pred, spec=spec)

    assert value == pytest.approx(-(math.log(0.5 / 1.0005) + math.log(0.6)) / 2)


@pytest.mark.parametrize(
    ("task_type", "name", "y_true", "y_pred"),
    [
        ("binary", "roc_auc", np.array([1.0, 1.0]), np.array([0.2, 0.8])),
        ("binary", "average_precision", np.array([0.0, 0.0]), np.array([0.2, 0.8])),
        ("probabilities", "roc_auc", np.eye(3)[[0, 0]], np.eye(3)[[0, 1]]),
        ("regression", "r2", np.array([3.0, 3.0]), np.array([1.0, 2.0])),
        ("regression", "r2", np.array([3.0]), np.array([1.0])),
        ("regression", "rmse", np.array([]), np.array([])),
    ],
)
def test_it_returns_none_when_the_metric_is_undefined(task_type, name, y_true, y_pred):
    value = compute_metric(name, y_true=y_true, y_pred=y_pred, spec=spec_for(task_type, name))

    assert value is None


def test_it_knows_which_direction_is_better():
    lower_is_better = {name for name, metric in METRICS.items() if not metric.higher_is_better}

    assert lower_is_better == {"log_loss", "rmse", "mse", "mae"}


def test_it_lists_the_metrics_of_a_task_type():
    names = [m.name for m in metrics_for_task_type("regression")]

    assert names == ["rmse", "mse", "mae", "r2"]


def test_it_names_the_known_metrics_when_one_is_unknown():
    with pytest.raises(KeyError, match="known metrics: accuracy, average_precision"):
        metric_get("auc")


def test_it_refuses_a_metric_of_another_task_type():
    with pytest.raises(ValueError, match="does not apply to regression"):
        compute_metric(
            "accuracy", y_true=REG_TRUE, y_pred=REG_PRED, spec=spec_for("regression", "rmse")
        )
