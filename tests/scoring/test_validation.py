"""Submission checks: each problem code, file by file, with its lines and message."""

import gzip

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scoring.spec import TaskSpec
from scoring.validation import read_table, validate_ground_truth, validate_predictions

BINARY = TaskSpec(
    id_column="id", target_columns=("target",), task_type="binary", primary_metric="roc_auc"
)
MULTICLASS = TaskSpec(
    id_column="id",
    target_columns=("label",),
    task_type="multiclass",
    primary_metric="accuracy",
    classes=("cat", "dog", "1"),
)
PROBABILITIES = TaskSpec(
    id_column="id",
    target_columns=("a", "b", "c"),
    task_type="probabilities",
    primary_metric="log_loss",
)
REGRESSION = TaskSpec(
    id_column="id", target_columns=("x", "y"), task_type="regression", primary_metric="rmse"
)
IDS = ["a1", "a2", "a3"]


def check(tmp_path, content, *, spec=BINARY, ids=IDS, name="predictions.csv", **options):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return validate_predictions(path, spec=spec, truth_ids=np.array(ids), **options)


def found(result):
    return [(p.code, p.line) for p in result.problems]


def messages(result):
    return [p.message for p in result.problems]


def test_it_aligns_a_valid_file_to_the_truth_order_whatever_the_row_order(tmp_path):
    result = check(tmp_path, "id,target\na3,0.3\na1,0.1\na2,0.2\n")

    assert result.ok
    assert result.problems == []
    assert result.total_problems == 0
    assert result.aligned.dtype == np.float64
    assert result.aligned.tolist() == [0.1, 0.2, 0.3]


def test_it_accepts_the_columns_in_any_order(tmp_path):
    result = check(tmp_path, "target,id\n0.1,a1\n0.2,a2\n0.3,a3\n")

    assert result.aligned.tolist() == [0.1, 0.2, 0.3]


def test_it_reports_duplicate_ids_with_both_lines(tmp_path):
    result = check(tmp_path, "id,target\na1,0.1\na2,0.2\na1,0.3\na3,0.4\n")

    assert ("duplicate_id", 4) in found(result)
    assert 'Line 4: id "a1" appears again (first on line 2).' in messages(result)
    assert result.aligned is None


def test_it_reports_missing_ids_with_a_count_and_the_first_few(tmp_path):
    result = check(tmp_path, "id,target\na2,0.2\n", ids=["a1", "a2", "a3", "a4"])

    problem = next(p for p in result.problems if p.code == "missing_id")
    assert problem.message == '3 test ids are missing from the file, e.g. "a1", "a3", "a4".'
    assert problem.line is None
    assert problem.column == "id"


def test_it_reports_unknown_ids_by_line(tmp_path):
    result = check(tmp_path, "id,target\na1,0.1\nzz,0.2\na2,0.2\na3,0.3\n")

    assert found(result) == [("wrong_row_count", None), ("unknown_id", 3)]
    assert messages(result)[1] == 'Line 3: id "zz" is not in the test set.'


def test_it_reports_a_wrong_row_count(tmp_path):
    result = check(tmp_path, "id,target\na1,0.1\na2,0.2\n")

    assert result.problems[0].code == "wrong_row_count"
    assert result.problems[0].message == "The file has 2 rows; expected 3 (one per test id)."


def test_it_reports_missing_and_unexpected_columns(tmp_path):
    result = check(tmp_path, "id,score,extra\na1,0.1,x\na2,0.2,x\na3,0.3,x\n")

    assert found(result) == [
        ("unexpected_column", 1),
        ("unexpected_column", 1),
        ("missing_column", 1),
    ]
    assert messages(result) == [
        'Line 1: column "score" is not expected.',
        'Line 1: column "extra" is not expected.',
        'Line 1: the header has no column "target"; expected "id", "target" (any order).',
    ]


def test_it_reports_a_missing_id_column(tmp_path):
    result = check(tmp_path, "row,target\na1,0.1\n")

    assert ("missing_id_column", 1) in found(result)
    assert 'Line 1: the header has no id column "id".' in messages(result)


def test_it_reports_a_column_named_twice(tmp_path):
    result = check(tmp_path, "id,target,target\na1,0.1,0.1\na2,0.2,0.2\na3,0.3,0.3\n")

    assert messages(result) == ['Line 1: column "target" appears twice (columns 2 and 3).']


def test_it_suggests_the_right_case_for_a_column_name(tmp_path):
    result = check(tmp_path, "ID,target\na1,0.1\n")

    assert 'Did you mean "id"? Column names are case-sensitive.' in messages(result)[0]


def test_it_recognises_a_saved_dataframe_index(tmp_path):
    result = check(tmp_path, ",id,target\n0,a1,0.1\n1,a2,0.2\n2,a3,0.3\n")

    assert found(result) == [("unexpected_column", 1)]
    assert "index=False" in messages(result)[0]


def test_it_reports_empty_values(tmp_path):
    result = check(tmp_path, "id,target\na1,\na2,0.2\n,0.3\n")

    assert ("empty_value", 2) in found(result)
    assert ("empty_value", 4) in found(result)
    assert 'Line 2: column "target" is empty.' in messages(result)
    assert 'Line 4: column "id" is empty.' in messages(result)


def test_it_reports_values_that_are_not_numbers(tmp_path):
    result = check(tmp_path, "id,target\na1,0.1\na2,high\na3,1\n")

    assert found(result) == [("not_numeric", 3)]
    assert messages(result) == [
        'Line 3, column "target": "high" is not a number. '
        'Submit the probability of class "1", from 0 to 1.'
    ]


def test_it_accepts_numbers_padded_with_spaces(tmp_path):
    result = check(tmp_path, "id,target\na1, 0.1\na2,0.2 \na3,1\n")

    assert result.aligned.tolist() == [0.1, 0.2, 1.0]


def test_it_reports_nan_and_infinity(tmp_path):
    result = check(tmp_path, "id,target\na1,nan\na2,inf\na3,0.3\n")

    assert found(result) == [("not_finite", 2), ("not_finite", 3)]
    assert messages(result)[1] == 'Line 3, column "target": "inf" is not a finite number.'


def test_it_reports_probabilities_outside_0_and_1(tmp_path):
    result = check(tmp_path, "id,target\na1,1.5\na2,-0.1\na3,1\n")

    assert found(result) == [("out_of_range", 2), ("out_of_range", 3)]
    assert messages(result)[0] == 'Line 2, column "target": "1.5" is outside the range 0 to 1.'


def test_it_reports_rows_whose_probabilities_do_not_sum_to_one(tmp_path):
    content = "id,a,b,c\na1,0.2,0.3,0.5\na2,0.2,0.2,0.2\na3,0.3333,0.3333,0.3334\n"

    result = check(tmp_path, content, spec=PROBABILITIES)

    assert found(result) == [("row_sum", 3)]
    assert messages(result) == [
        "Line 3: the probabilities add up to 0.6; each row must add up to 1 (within 0.001)."
    ]


def test_it_reports_labels_outside_the_classes(tmp_path):
    result = check(tmp_path, "id,label\na1,cat\na2,bird\na3,dog\n", spec=MULTICLASS)

    assert found(result) == [("unknown_label", 3)]
    assert messages(result) == [
        'Line 3, column "label": "bird" is not one of the classes ("cat", "dog", "1").'
    ]


def test_it_compares_numeric_labels_by_value(tmp_path):
    result = check(tmp_path, "id,label\na1,1.0\na2, cat\na3,01\n", spec=MULTICLASS)

    assert result.aligned.dtype == object
    assert result.aligned.tolist() == ["1", "cat", "1"]


def test_it_reports_an_empty_file(tmp_path):
    result = check(tmp_path, "")

    assert found(result) == [("empty_file", None)]
    assert messages(result) == ["The file is empty."]


def test_it_treats_a_header_alone_as_missing_every_id(tmp_path):
    result = check(tmp_path, "id,target\n")

    assert [p.code for p in result.problems] == ["wrong_row_count", "missing_id"]
    assert messages(result)[0] == "The file has 0 rows; expected 3 (one per test id)."


def test_it_reports_bytes_that_are_not_utf8_with_line_and_byte(tmp_path):
    result = check(tmp_path, b"id,target\na1,0.1\ncaf\xe9,0.2\na3,0.3\n")

    assert found(result) == [("not_utf8", 3)]
    assert messages(result) == ["Line 3: byte 4 (0xE9) is not valid UTF-8; save the file as UTF-8."]


def test_it_reports_a_utf16_file(tmp_path):
    result = check(tmp_path, "id,target\na1,0.1\n".encode("utf-16"))

    assert found(result) == [("not_utf8", 1)]
    assert "UTF-16" in messages(result)[0]


def test_it_reports_binary_garbage_as_not_csv(tmp_path):
    garbage = bytes(np.random.default_rng(0).integers(0, 256, size=5000, dtype=np.uint8))

    result = check(tmp_path, garbage)

    assert [p.code for p in result.problems] == ["not_csv"]
    assert messages(result)[0].startswith("This is a binary file, not CSV text")


def test_it_reports_a_zip_archive(tmp_path):
    result = check(tmp_path, b"PK\x03\x04" + b"\x00" * 100)

    assert [p.code for p in result.problems] == ["not_csv"]
    assert "ZIP" in messages(result)[0]


def test_it_reports_rows_with_the_wrong_number_of_fields(tmp_path):
    result = check(tmp_path, "id,target\na1,0.1\na2,0.2,7,8\na3\n")

    # The two rows are left out, so their ids count as missing too.
    assert found(result) == [
        ("wrong_row_count", None),
        ("missing_id", None),
        ("not_csv", 3),
        ("not_csv", 4),
    ]
    assert messages(result)[2:] == [
        "Line 3 has 4 fields, expected 2.",
        "Line 4 has 1 field, expected 2.",
    ]


def test_it_keeps_line_numbers_right_after_skipped_lines(tmp_path):
    content = "id,target\n\na1,0.1\na2,0.2,9\n\na3,high\n"

    result = check(tmp_path, content)

    assert found(result)[-2:] == [("not_csv", 4), ("not_numeric", 6)]


def test_it_ignores_blank_lines(tmp_path):
    result = check(tmp_path, "id,target\na1,0.1\n\na2,0.2\na3,0.3\n\n\n")

    assert result.ok
    assert result.aligned.tolist() == [0.1, 0.2, 0.3]


def test_it_suggests_commas_when_the_columns_are_separated_otherwise(tmp_path):
    result = check(tmp_path, "id;target\na1;0.1\n")

    assert found(result) == [("not_csv", 1)]
    assert messages(result) == ['Line 1: the columns seem separated by ";"; use commas.']


def test_it_keeps_ids_as_strings(tmp_path):
    result = check(tmp_path, "id,target\n7,0.1\n007,0.2\n", ids=["007", "7"])

    assert result.aligned.tolist() == [0.2, 0.1]


def test_it_does_not_match_ids_that_only_look_alike(tmp_path):
    result = check(tmp_path, "id,target\n7,0.1\n", ids=["007"])

    assert ("unknown_id", 2) in found(result)


def test_it_reports_every_problem_at_once(tmp_path):
    content = "id,target,extra\na1,0.1,x\na1,abc,x\nzz,2,x\n,0.5,x\n"

    result = check(tmp_path, content)

    assert found(result) == [
        ("unexpected_column", 1),
        ("wrong_row_count", None),
        ("missing_id", None),
        ("duplicate_id", 3),
        ("not_numeric", 3),
        ("unknown_id", 4),
        ("out_of_range", 4),
        ("empty_value", 5),
    ]
    assert result.total_problems == 8


def test_it_caps_the_list_but_counts_every_problem(tmp_path):
    ids = [f"r{i}" for i in range(500)]
    content = "id,target\n" + "".join(f"{i},bad\n" for i in ids)

    result = check(tmp_path, content, ids=ids, max_problems=10)

    assert len(result.problems) == 10
    assert result.total_problems == 500
    assert [p.line for p in result.problems] == list(range(2, 12))


def test_it_reads_gzipped_csv(tmp_path):
    content = gzip.compress(b"id,target\na3,0.3\na1,0.1\na2,0.2\n")

    result = check(tmp_path, content, name="predictions.csv.gz")

    assert result.aligned.tolist() == [0.1, 0.2, 0.3]


def test_it_reports_a_broken_gzip_file(tmp_path):
    content = gzip.compress(b"id,target\na3,0.3\na1,0.1\na2,0.2\n" * 100)[:60]

    result = check(tmp_path, content)

    assert [p.code for p in result.problems] == ["not_csv"]


def test_it_reads_parquet_with_typed_columns(tmp_path):
    path = tmp_path / "predictions.parquet"
    pq.write_table(pa.table({"id": [3, 1, 2], "target": [0.3, 0.1, 0.2]}), path)

    result = validate_predictions(path, spec=BINARY, truth_ids=np.array(["1", "2", "3"]))

    assert result.aligned is not None
    assert result.aligned.tolist() == [0.1, 0.2, 0.3]


def test_it_numbers_parquet_rows_like_csv_lines(tmp_path):
    path = tmp_path / "predictions.parquet"
    table = pa.table({"id": ["a1", "a2", "a3"], "target": [0.1, None, float("nan")]})
    pq.write_table(table, path)

    result = validate_predictions(path, spec=BINARY, truth_ids=np.array(IDS))

    assert found(result) == [("empty_value", 3), ("not_finite", 4)]


def test_it_reports_a_broken_parquet_file(tmp_path):
    result = check(tmp_path, b"PAR1 not really parquet")

    assert [p.code for p in result.problems] == ["not_csv"]
    assert "Parquet" in messages(result)[0]


def test_it_aligns_several_regression_targets_as_a_matrix(tmp_path):
    result = check(tmp_path, "id,y,x\na2,4,3\na1,2,1\na3,6,5\n", spec=REGRESSION)

    assert result.aligned.shape == (3, 2)
    assert result.aligned.tolist() == [[1, 2], [3, 4], [5, 6]]


def test_read_table_returns_every_column_as_text(tmp_path):
    path = tmp_path / "file.csv"
    path.write_text("id,target\n007,0.5\n")

    table = read_table(path)

    assert table.column_names == ["id", "target"]
    assert table.column("id").to_pylist() == ["007"]
    assert table.column("target").to_pylist() == ["0.5"]


def test_read_table_raises_on_an_unreadable_file(tmp_path):
    path = tmp_path / "file.csv"
    path.write_text("")

    with pytest.raises(ValueError, match="The file is empty"):
        read_table(path)


# --- ground truth ----------------------------------------------------------------------


def check_truth(tmp_path, content, *, spec=BINARY):
    path = tmp_path / "truth.csv"
    path.write_text(content)
    return validate_ground_truth(path, spec=spec)


def test_a_valid_ground_truth_gives_its_values_in_file_order(tmp_path):
    result = check_truth(tmp_path, "id,target,Usage\na2,1,Public\na1,0,private\n")

    assert result.ok
    assert result.aligned.tolist() == [1.0, 0.0]


def test_a_ground_truth_may_not_repeat_ids(tmp_path):
    result = check_truth(tmp_path, "id,target\na1,1\na2,0\na1,0\n")

    assert found(result) == [("duplicate_id", 4)]
    assert messages(result) == ['Line 4: id "a1" appears again (first on line 2).']


def test_a_ground_truth_needs_known_labels_and_usage_values(tmp_path):
    result = check_truth(tmp_path, "id,target,Usage\na1,1,Public\na2,yes,Test\na3,0,\n")

    assert found(result) == [("unknown_label", 3), ("unknown_label", 3), ("empty_value", 4)]
    assert messages(result)[:2] == [
        'Line 3, column "target": "yes" is not one of the classes ("0", "1").',
        'Line 3, column "Usage": "Test" should be Public or Private.',
    ]


def test_a_ground_truth_needs_rows(tmp_path):
    result = check_truth(tmp_path, "id,target\n")

    assert found(result) == [("empty_file", None)]


def test_a_probabilities_ground_truth_must_be_one_hot(tmp_path):
    content = "id,a,b,c\na1,1,0,0\na2,0.5,0.5,0\na3,1,1,0\na4,0,0,0\n"

    result = check_truth(tmp_path, content, spec=PROBABILITIES)

    assert found(result) == [("out_of_range", 3), ("row_sum", 4), ("row_sum", 5)]
    assert messages(result)[1] == "Line 4: exactly one class must be 1, found 2."


def test_it_reports_a_parquet_column_of_an_unsupported_type(tmp_path):
    path = tmp_path / "predictions.parquet"
    pq.write_table(pa.table({"id": ["a1"], "target": [[0.1, 0.2]]}), path)

    result = validate_predictions(path, spec=BINARY, truth_ids=np.array(["a1"]))

    assert [(p.code, p.column) for p in result.problems] == [("not_csv", "target")]
    assert result.problems[0].message.startswith('Column "target" has type list<')


def test_it_tells_nan_from_text_when_some_values_need_the_slow_pass(tmp_path):
    result = check(tmp_path, "id,target\na1, NaN\na2,abc\na3, 0.5\n")

    assert found(result) == [("not_finite", 2), ("not_numeric", 3)]


def test_a_binary_ground_truth_maps_its_labels_to_the_positive_class(tmp_path):
    spec = TaskSpec(
        id_column="id",
        target_columns=("churned",),
        task_type="binary",
        primary_metric="accuracy",
        classes=("no", "yes"),
    )

    result = check_truth(tmp_path, "id,churned\na1,yes\na2,no\na3, yes\n", spec=spec)

    assert result.aligned.tolist() == [1.0, 0.0, 1.0]
