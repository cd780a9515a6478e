"""Reference predictions (scoring/baselines.py): the constant predictor, the simple model,
and the normalized score; scored through scoring.evaluate like a submission."""

import numpy as np
import pandas as pd
import pytest

from scoring.baselines import (
    constant_values,
    prediction_write,
    references_make,
)
from scoring.evaluate import evaluate, load_truth
from scoring.metrics import metric_get, normalized_score
from scoring.spec import TaskSpec

BINARY = TaskSpec(
    id_column="id",
    target_columns=("label",),
    task_type="binary",
    primary_metric="accuracy",
    secondary_metrics=("roc_auc",),
    classes=("no", "yes"),
)
# Four test rows: three "yes" in the ground truth, one "no".
TRUTH = "id,label,Usage\nt1,yes,Public\nt2,yes,Public\nt3,no,Private\nt4,yes,Private\n"


def _train(n: int = 40) -> pd.DataFrame:
    """x separates the classes perfectly: x > 0 is "yes"; a quarter of the rows are yes."""
    x = np.linspace(-3, 1, n)
    return pd.DataFrame(
        {"id": [f"r{i}" for i in range(n)], "x": x, "label": np.where(x > 0, "yes", "no")}
    )


@pytest.fixture
def truth(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text(TRUTH)
    return load_truth(path, BINARY)


def _files(tmp_path, train: pd.DataFrame | None, test: pd.DataFrame | None):
    train_path = test_path = None
    if train is not None:
        train_path = tmp_path / "train.csv"
        train.to_csv(train_path, index=False)
    if test is not None:
        test_path = tmp_path / "test.csv"
        test.to_csv(test_path, index=False)
    return train_path, test_path


def test_the_constant_learns_the_class_prior_from_the_training_file(tmp_path, truth):
    train_path, _ = _files(tmp_path, _train(), None)

    constant, model = references_make(
        BINARY, truth.ids, truth_values=truth.values, train_path=train_path
    )

    # 10 of the 40 training rows are "yes" (x > 0), whatever the ground truth's 3 of 4.
    assert constant.reason == "learnt from the training file"
    assert constant.predictions is not None
    assert constant.predictions["label"].tolist() == pytest.approx([0.25] * 4)
    assert constant.predictions["id"].tolist() == ["t1", "t2", "t3", "t4"]
    assert not model.made
    assert model.reason == "the task has no public test inputs file"


def test_without_a_training_file_the_constant_uses_the_ground_truth_prior(truth):
    constant, model = references_make(BINARY, truth.ids, truth_values=truth.values)

    assert constant.reason == "learnt from the ground truth"
    assert constant.predictions is not None
    assert constant.predictions["label"].tolist() == pytest.approx([0.75] * 4)
    assert model.reason == "the task has no public training file"


def test_the_model_trains_on_the_training_file_and_predicts_the_test_inputs(tmp_path, truth):
    test = pd.DataFrame({"id": ["t1", "t2", "t3", "t4"], "x": [2.0, 1.0, -2.0, 0.5]})
    train_path, test_path = _files(tmp_path, _train(), test)

    _, model = references_make(
        BINARY, truth.ids, truth_values=truth.values, train_path=train_path, test_path=test_path
    )
    assert model.predictions is not None
    predictions = prediction_write(model.predictions, tmp_path / "model.csv")
    evaluation = evaluate(predictions_path=predictions, truth=truth, spec=BINARY)

    assert model.label == "Simple model (logistic regression)"
    assert evaluation.ok
    assert evaluation.scores["public"]["accuracy"] == 1.0
    assert evaluation.scores["private"] == {"accuracy": 1.0, "roc_auc": 1.0}
    assert evaluation.influence["private"].values.shape == (2,)


def test_the_model_is_skipped_with_a_reason_when_no_feature_is_shared(tmp_path, truth):
    test = pd.DataFrame({"id": ["t1", "t2", "t3", "t4"], "other": [1, 2, 3, 4]})
    train_path, test_path = _files(tmp_path, _train(), test)

    _, model = references_make(
        BINARY, truth.ids, truth_values=truth.values, train_path=train_path, test_path=test_path
    )

    assert not model.made
    assert model.reason == "the training and test files share no numeric feature column"


def test_the_constant_of_a_multiclass_task_is_the_majority_class():
    spec = TaskSpec(
        id_column="id",
        target_columns=("y",),
        task_type="multiclass",
        primary_metric="accuracy",
        classes=("a", "b", "c"),
    )

    assert constant_values(spec, np.array(["a", "c", "c", "b"])) == "c"
    # Equal counts: the first class in the task's order.
    assert constant_values(spec, np.array(["c", "b"])) == "b"


def test_the_constant_of_a_regression_task_is_the_mean_of_each_target():
    spec = TaskSpec(
        id_column="id", target_columns=("u", "v"), task_type="regression", primary_metric="rmse"
    )

    values = constant_values(spec, np.array([[1.0, 10.0], [3.0, 30.0]]))

    assert values.tolist() == [2.0, 20.0]


def test_the_constant_of_a_probabilities_task_is_the_class_prior():
    spec = TaskSpec(
        id_column="id",
        target_columns=("a", "b"),
        task_type="probabilities",
        primary_metric="log_loss",
    )

    values = constant_values(spec, np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))

    assert values.tolist() == [0.75, 0.25]


def test_a_regression_model_is_ridge_regression_on_the_numeric_columns(tmp_path):
    spec = TaskSpec(
        id_column="id", target_columns=("y",), task_type="regression", primary_metric="mae"
    )
    x = np.arange(20, dtype=float)
    train = pd.DataFrame({"id": range(20), "x": x, "name": ["n"] * 20, "y": 2 * x + 1})
    test = pd.DataFrame({"id": ["a", "b"], "x": [5.0, 10.0], "name": ["m", "m"]})
    truth = tmp_path / "truth.csv"
    truth.write_text("id,y\na,11\nb,21\n")
    loaded = load_truth(truth, spec)
    train_path, test_path = _files(tmp_path, train, test)

    constant, model = references_make(
        spec, loaded.ids, truth_values=loaded.values, train_path=train_path, test_path=test_path
    )

    assert constant.predictions is not None
    assert model.predictions is not None
    assert constant.predictions["y"].tolist() == [20.0, 20.0]  # the training mean
    assert model.label == "Simple model (ridge regression)"
    # y = 2x + 1 on 20 rows; ridge (alpha 1, standardised x) shrinks the slope by 20/21.
    slope = 2 * 20 / 21
    expected = [20 + (5 - 9.5) * slope, 20 + (10 - 9.5) * slope]
    assert model.predictions["y"].tolist() == pytest.approx(expected)


def test_the_normalized_score_is_zero_for_the_constant_and_one_for_perfect():
    auc = metric_get("roc_auc")

    assert normalized_score(auc, 0.5, 0.5) == 0.0
    assert normalized_score(auc, 1.0, 0.5) == 1.0
    assert normalized_score(auc, 0.8, 0.5) == pytest.approx(0.6)
    assert normalized_score(auc, 0.4, 0.5) == pytest.approx(-0.2)
    assert normalized_score(auc, 0.8, None) is None


def test_the_normalized_score_of_a_lower_is_better_metric_rises_as_the_error_falls():
    rmse = metric_get("rmse")

    assert normalized_score(rmse, 5.0, 5.0) == 0.0
    assert normalized_score(rmse, 2.0, 5.0) == pytest.approx(0.6)
    assert normalized_score(rmse, 0.0, 5.0) == 1.0
    assert normalized_score(rmse, 6.0, 5.0) == pytest.approx(-0.2)
    # A constant that is already perfect leaves nothing to normalise by.
    assert normalized_score(rmse, 0.0, 0.0) is None
