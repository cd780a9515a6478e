"""The constant predictor (scoring.constant): the 0 of a suite's normalized scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scoring.constant import constant_predictions, constant_score
from scoring.spec import TaskSpec

BINARY = TaskSpec(
    id_column="id", target_columns=("y",), task_type="binary", primary_metric="roc_auc"
)
MULTI = TaskSpec(
    id_column="id",
    target_columns=("y",),
    task_type="multiclass",
    primary_metric="accuracy",
    classes=("a", "b", "c"),
)
PROBS = TaskSpec(
    id_column="id",
    target_columns=("a", "b", "c"),
    task_type="probabilities",
    primary_metric="log_loss",
)
REGRESSION = TaskSpec(
    id_column="id", target_columns=("y",), task_type="regression", primary_metric="rmse"
)


def test_on_a_binary_task_it_predicts_the_positive_rate():
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.0])

    assert constant_predictions(y, BINARY).tolist() == [0.4] * 5
    assert constant_score("roc_auc", y_true=y, spec=BINARY) == 0.5
    assert constant_score("accuracy", y_true=y, spec=BINARY) == pytest.approx(0.6)  # majority
    entropy = -(0.4 * math.log(0.4) + 0.6 * math.log(0.6))
    assert constant_score("log_loss", y_true=y, spec=BINARY) == pytest.approx(entropy)


def test_on_a_multiclass_task_it_predicts_the_most_frequent_class_the_first_on_a_tie():
    y = np.array(["b", "c", "b", "c", "a"])

    assert constant_predictions(y, MULTI).tolist() == ["b"] * 5
    assert constant_score("accuracy", y_true=y, spec=MULTI) == pytest.approx(0.4)


def test_on_a_probabilities_task_it_predicts_the_priors():
    y = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 1.0, 0], [0, 0, 1.0]])

    assert constant_predictions(y, PROBS).tolist() == [[0.25, 0.5, 0.25]] * 4
    entropy = -(0.5 * math.log(0.25) + 0.5 * math.log(0.5))
    assert constant_score("log_loss", y_true=y, spec=PROBS) == pytest.approx(entropy)
    assert constant_score("roc_auc", y_true=y, spec=PROBS) == 0.5


def test_on_a_regression_task_it_predicts_the_mean():
    y = np.array([1.0, 2.0, 3.0, 6.0])

    assert constant_predictions(y, REGRESSION).tolist() == [3.0] * 4
    assert constant_score("rmse", y_true=y, spec=REGRESSION) == pytest.approx(np.std(y))
    assert constant_score("r2", y_true=y, spec=REGRESSION) == 0.0


def test_it_can_be_fitted_on_other_rows_such_as_the_training_labels():
    y = np.array([1.0, 2.0, 3.0])

    predictions = constant_predictions(y, REGRESSION, fit_on=np.array([10.0, 20.0]))

    assert predictions.tolist() == [15.0] * 3


def test_its_score_is_none_where_the_metric_is_undefined():
    assert constant_score("roc_auc", y_true=np.ones(3), spec=BINARY) is None


def test_it_needs_a_row_to_fit_on():
    with pytest.raises(ValueError, match="at least one row"):
        constant_predictions(np.ones(3), REGRESSION, fit_on=np.array([]))
