"""Scoring a valid submission: per-split scores and per-row values."""

import numpy as np
import pytest

from scoring.evaluate import evaluate, load_truth
from scoring.spec import TaskSpec

SPEC = TaskSpec(
    id_column="id",
    target_columns=("target",),
    task_type="binary",
    primary_metric="roc_auc",
    secondary_metrics=("accuracy",),
)
# Public rows a1, a2 are both right; private rows a3, a4 are wrong and a5 is right.
TRUTH = "id,target,Usage\na1,1,Public\na2,0,public\na3,1,Private\na4,0,PRIVATE\na5,1,Private\n"
PREDICTIONS = "id,target\na5,0.8\na4,0.6\na3,0.4\na2,0.2\na1,0.9\n"


@pytest.fixture
def files(tmp_path):
    def write(truth=TRUTH, predictions=PREDICTIONS):
        (tmp_path / "truth.csv").write_text(truth)
        (tmp_path / "predictions.csv").write_text(predictions)
        return tmp_path / "truth.csv", tmp_path / "predictions.csv"

    return write


def test_it_scores_the_public_and_private_rows_separately(files):
    truth_path, predictions_path = files()

    evaluation = evaluate(
        predictions_path=predictions_path, truth=load_truth(truth_path, SPEC), spec=SPEC
    )

    assert evaluation.ok
    assert evaluation.scores["public"] == {"roc_auc": 1.0, "accuracy": 1.0}
    # Private: positives 0.4 and 0.8 against the negative 0.6 -> one of two pairs ordered.
    assert evaluation.scores["private"] == {"roc_auc": 0.5, "accuracy": pytest.approx(1 / 3)}


def test_without_a_usage_column_both_splits_score_every_row(files):
    truth = "".join(line.rsplit(",", 1)[0] + "\n" for line in TRUTH.splitlines())
    truth_path, predictions_path = files(truth=truth)

    evaluation = evaluate(
        predictions_path=predictions_path, truth=load_truth(truth_path, SPEC), spec=SPEC
    )

    assert evaluation.scores["public"] == evaluation.scores["private"]
    assert evaluation.scores["public"]["accuracy"] == pytest.approx(3 / 5)


def test_row_values_follow_the_ground_truth_order_as_float32(files):
    truth_path, predictions_path = files()

    evaluation = evaluate(
        predictions_path=predictions_path, truth=load_truth(truth_path, SPEC), spec=SPEC
    )

    assert evaluation.row_kind == "correct"
    assert evaluation.row_values is not None
    assert evaluation.row_values.dtype == np.float32
    assert evaluation.row_values.tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]


def test_a_shuffled_file_scores_identically(files, tmp_path):
    truth_path, predictions_path = files()
    lines = PREDICTIONS.splitlines()
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    truth = load_truth(truth_path, SPEC)

    first = evaluate(predictions_path=predictions_path, truth=truth, spec=SPEC)
    second = evaluate(predictions_path=shuffled, truth=truth, spec=SPEC)

    assert first.scores == second.scores
    assert first.row_values is not None
    assert second.row_values is not None
    assert first.row_values.tolist() == second.row_values.tolist()


def test_an_invalid_submission_gets_problems_and_no_scores(files):
    truth_path, predictions_path = files(predictions="id,target\na1,0.9\n")

    evaluation = evaluate(
        predictions_path=predictions_path, truth=load_truth(truth_path, SPEC), spec=SPEC
    )

    assert not evaluation.ok
    assert evaluation.scores == {}
    assert evaluation.row_values is None
    assert [p.code for p in evaluation.problems] == ["wrong_row_count", "missing_id"]


def test_load_truth_keeps_ids_as_strings_and_splits_as_masks(files):
    truth_path, _ = files(truth="id,target,Usage\n007,1,Public\n7,0,Private\n")

    truth = load_truth(truth_path, SPEC)

    assert truth.ids.tolist() == ["007", "7"]
    assert truth.values.tolist() == [1.0, 0.0]
    assert truth.splits["public"].tolist() == [True, False]
    assert truth.splits["private"].tolist() == [False, True]


def test_load_truth_names_the_problems_of_an_invalid_file(files):
    truth_path, _ = files(truth="id,target\na1,1\na1,0\n")

    with pytest.raises(ValueError, match='Line 3: id "a1" appears again'):
        load_truth(truth_path, SPEC)


@pytest.mark.parametrize(
    ("spec", "truth", "predictions", "kind", "rows"),
    [
        (
            TaskSpec(
                id_column="id",
                target_columns=("label",),
                task_type="multiclass",
                primary_metric="accuracy",
                classes=("x", "y"),
            ),
            "id,label\nr1,x\nr2,y\n",
            "id,label\nr2,x\nr1,x\n",
            "correct",
            [1.0, 0.0],
        ),
        (
            TaskSpec(
                id_column="id",
                target_columns=("x", "y"),
                task_type="probabilities",
                primary_metric="log_loss",
            ),
            "id,x,y\nr1,1,0\nr2,0,1\n",
            "id,x,y\nr1,0.5,0.5\nr2,0.75,0.25\n",
            "log_loss",
            [-np.log(0.5), -np.log(0.25)],
        ),
        (
            TaskSpec(
                id_column="id",
                target_columns=("u", "v"),
                task_type="regression",
                primary_metric="rmse",
            ),
            "id,u,v\nr1,1,1\nr2,0,0\n",
            "id,u,v\nr1,2,3\nr2,0,0\n",
            "squared_error",
            [2.5, 0.0],
        ),
    ],
)
def test_row_values_fit_the_task_type(files, spec, truth, predictions, kind, rows):
    truth_path, predictions_path = files(truth=truth, predictions=predictions)

    evaluation = evaluate(
        predictions_path=predictions_path, truth=load_truth(truth_path, spec), spec=spec
    )

    assert evaluation.row_kind == kind
    assert evaluation.row_values is not None
    assert evaluation.row_values.tolist() == pytest.approx(rows)
