"""Task specs: defaults, consistency checks and the JSON round trip."""

import json

import pytest

from scoring.spec import TaskSpec, canonical_label


def make(**changes):
    fields = {
        "id_column": "id",
        "target_columns": ("target",),
        "task_type": "binary",
        "primary_metric": "roc_auc",
    }
    return TaskSpec(**(fields | changes))


def test_it_survives_a_json_round_trip():
    spec = make(
        task_type="multiclass",
        primary_metric="accuracy",
        classes=("a", "b", "c"),
        secondary_metrics=("f1_macro",),
    )

    again = TaskSpec.from_dict(json.loads(json.dumps(spec.to_dict())))

    assert again == spec
    assert spec.to_dict()["classes"] == ["a", "b", "c"]


def test_it_lists_the_primary_metric_first():
    spec = make(secondary_metrics=("log_loss", "accuracy"))

    assert spec.metrics == ("roc_auc", "log_loss", "accuracy")
    assert spec.columns == ("id", "target")


def test_a_binary_task_defaults_to_classes_0_and_1():
    assert make().classes == ("0", "1")


def test_a_probabilities_task_takes_its_classes_from_the_columns():
    spec = make(target_columns=["cat", "dog"], task_type="probabilities", primary_metric="log_loss")

    assert spec.classes == ("cat", "dog")
    assert spec.target_columns == ("cat", "dog")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"primary_metric": "auc"}, 'Unknown metric "auc"'),
        ({"primary_metric": "rmse"}, 'Metric "rmse" does not apply to binary tasks'),
        ({"classes": ("a", "b", "c")}, "exactly two classes"),
        ({"target_columns": ("t1", "t2")}, "exactly one target column"),
        ({"target_columns": ("id",)}, "Column names must be distinct"),
        ({"task_type": "ranking"}, 'Unknown task type "ranking"'),
        ({"classes": ("1", "1.0")}, "Two classes are the same label"),
        ({"secondary_metrics": ("roc_auc",)}, "A metric is listed twice"),
        ({"usage_column": "id"}, "clashes with a submission column"),
    ],
)
def test_it_refuses_an_inconsistent_spec(changes, reason):
    with pytest.raises(ValueError, match=reason):
        make(**changes)


def test_it_refuses_unknown_or_missing_keys():
    with pytest.raises(ValueError, match="Unknown task spec keys: colour"):
        TaskSpec.from_dict(make().to_dict() | {"colour": "red"})
    with pytest.raises(ValueError, match="Missing task spec keys: task_type"):
        TaskSpec.from_dict({"id_column": "id", "target_columns": ["t"], "primary_metric": "rmse"})


@pytest.mark.parametrize(
    ("label", "canonical"),
    [
        ("1", "1"),
        ("1.0", "1"),
        (" 01 ", "1"),
        ("2.50", "2.5"),
        ("cat", "cat"),
        (" Cat", "Cat"),
        ("nan", "nan"),
    ],
)
def test_labels_compare_numbers_by_value_and_text_exactly(label, canonical):
    assert canonical_label(label) == canonical
