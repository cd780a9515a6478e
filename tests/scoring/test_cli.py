"""The scorer image's command line, run as the container runs it, and read_result."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scoring.cli import read_result, truth_summary, write_result
from scoring.evaluate import Evaluation, evaluate, load_truth
from scoring.spec import TaskSpec
from scoring.validation import Problem

ROOT = Path(__file__).resolve().parents[2]
SPEC = TaskSpec(
    id_column="id",
    target_columns=("target",),
    task_type="binary",
    primary_metric="roc_auc",
    secondary_metrics=("log_loss",),
)


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps(SPEC.to_dict()))
    (tmp_path / "truth.csv").write_text("id,target,Usage\na,1,Public\nb,0,Public\nc,1,Private\n")
    (tmp_path / "predictions.csv").write_text("id,target\nc,0.7\nb,0.4\na,0.8\n")
    return tmp_path


def run_cli(directory, *extra, predictions="predictions.csv"):
    arguments = ["--spec", "spec.json", "--predictions", predictions, "--truth", "truth.csv"]
    return subprocess.run(
        [sys.executable, "-m", "scoring.cli", *arguments, "--out", "out", *extra],
        cwd=directory,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_it_writes_scores_and_row_values_for_a_valid_submission(inputs):
    completed = run_cli(inputs)

    assert completed.returncode == 0, completed.stderr
    result = json.loads((inputs / "out" / "result.json").read_text())
    assert result["problems"] == []
    assert result["total_problems"] == 0
    assert result["row_kind"] == "correct"
    assert set(result["scores"]) == {"public", "private"}
    assert result["scores"]["public"]["roc_auc"] == 1.0
    assert result["scores"]["private"]["roc_auc"] is None  # one class only
    rows = np.load(inputs / "out" / "rows.npy")
    assert rows.dtype == np.float32
    assert rows.tolist() == [1.0, 1.0, 1.0]


def test_read_result_gives_back_what_evaluate_computed(inputs):
    run_cli(inputs)
    expected = evaluate(
        predictions_path=inputs / "predictions.csv",
        truth=load_truth(inputs / "truth.csv", SPEC),
        spec=SPEC,
    )

    evaluation = read_result(inputs / "out", expected_rows=3)

    assert evaluation.scores == expected.scores
    assert evaluation.row_values is not None
    assert expected.row_values is not None
    assert evaluation.row_values.tolist() == expected.row_values.tolist()
    assert evaluation.ok


def test_an_invalid_submission_is_a_result_not_a_failure(inputs):
    (inputs / "bad.csv").write_text("id,target\na,0.8\na,2\n")

    completed = run_cli(inputs, predictions="bad.csv")

    assert completed.returncode == 0, completed.stderr
    evaluation = read_result(inputs / "out")
    assert not evaluation.ok
    assert [(p.code, p.line) for p in evaluation.problems] == [
        ("wrong_row_count", None),
        ("missing_id", None),
        ("duplicate_id", 3),
        ("out_of_range", 3),
    ]
    assert evaluation.total_problems == 4
    assert not (inputs / "out" / "rows.npy").exists()


def test_it_exits_2_on_bad_arguments(inputs):
    (inputs / "spec.json").write_text('{"id_column": "id"}')

    assert run_cli(inputs, predictions="missing.csv").returncode == 2
    completed = run_cli(inputs)
    assert completed.returncode == 2
    assert "Missing task spec keys" in completed.stderr


def test_it_fails_with_a_traceback_on_an_invalid_ground_truth(inputs):
    (inputs / "truth.csv").write_text("id,target\na,1\na,0\n")

    completed = run_cli(inputs)

    assert completed.returncode == 1
    assert "Traceback" in completed.stderr
    assert "appears again" in completed.stderr


def valid_result(tmp_path, **changes):
    evaluation = Evaluation(
        problems=[],
        total_problems=0,
        scores={"public": {"roc_auc": 0.5}, "private": {"roc_auc": None}},
        row_values=np.array([1, 0], dtype=np.float32),
        row_kind="correct",
    )
    write_result(tmp_path, evaluation)
    if changes:
        data = json.loads((tmp_path / "result.json").read_text()) | changes
        (tmp_path / "result.json").write_text(json.dumps(data))
    return tmp_path


def test_read_result_round_trips_problems(tmp_path):
    problem = Problem("unknown_id", 'Line 3: id "z" is not in the test set.', 3, "id")
    write_result(tmp_path, Evaluation([problem], 7, {}, None, "correct"))

    evaluation = read_result(tmp_path)

    assert evaluation.problems == [problem]
    assert evaluation.total_problems == 7


@pytest.mark.parametrize(
    "changes",
    [
        {"scores": {"public": {"roc_auc": "NaN"}, "private": {}}},
        {"scores": {"public": {"roc_auc": True}, "private": {}}},
        {"scores": {"public": {"made_up": 0.5}, "private": {}}},
        {"scores": {"public": {"roc_auc": 0.5}}},
        {"scores": {"public": {}, "private": {}, "secret": {}}},
        {"total_problems": -1},
        {"row_kind": "vibes"},
        {"problems": [{"code": "x"}]},
    ],
)
def test_read_result_rejects_malformed_output(tmp_path, changes):
    with pytest.raises(ValueError, match=r"result\.json"):
        read_result(valid_result(tmp_path, **changes))


def test_read_result_rejects_non_finite_numbers(tmp_path):
    directory = valid_result(tmp_path)
    text = (directory / "result.json").read_text().replace("0.5", "NaN")
    (directory / "result.json").write_text(text)

    with pytest.raises(ValueError, match="NaN"):
        read_result(directory)


def test_read_result_checks_the_row_values(tmp_path):
    directory = valid_result(tmp_path)

    with pytest.raises(ValueError, match="has 2 rows, not 3"):
        read_result(directory, expected_rows=3)
    np.save(directory / "rows.npy", np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="not a float32 vector"):
        read_result(directory)
    (directory / "rows.npy").unlink()
    with pytest.raises(ValueError, match="missing or unreadable"):
        read_result(directory)


def test_the_scorer_writes_the_primary_metrics_pseudo_values_and_the_host_reads_them(inputs):
    run_cli(inputs)

    evaluation = read_result(inputs / "out", expected_rows=3)

    # Public: two rows, both classes; private: one class only, so no ROC AUC and no values.
    assert set(evaluation.influence) == {"public"}
    public = evaluation.influence["public"]
    assert public.metric == "roc_auc"
    assert public.values.tolist() == [1.0, 1.0]
    assert public.strata is not None
    assert public.strata.tolist() == [1, 0]


def test_an_older_images_output_without_pseudo_values_still_reads(inputs):
    run_cli(inputs)
    (inputs / "out" / "influence.npz").unlink()

    assert read_result(inputs / "out", expected_rows=3).influence == {}


def test_read_result_refuses_compressed_or_oversized_pseudo_values(inputs):
    run_cli(inputs)
    path = inputs / "out" / "influence.npz"
    np.savez_compressed(path, public=np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="compressed"):
        read_result(inputs / "out", expected_rows=3)
    np.savez(path, public=np.zeros(30_000, dtype=np.float32))
    with pytest.raises(ValueError, match="too large"):
        read_result(inputs / "out", expected_rows=3)


@pytest.mark.parametrize("usage", [True, False])
def test_truth_summary_hashes_one_id_tab_usage_line_per_row(tmp_path, usage):
    ids = [f"r{i}" for i in range(70_000)] + ["é x", '"q"']  # more than one piece
    splits = ["Public" if i % 3 else "Private" for i in range(len(ids))]
    targets = [str(n % 2) for n in range(len(ids))]
    cells = zip(ids, targets, splits, strict=True)
    rows = [f"{i},{t},{s}" if usage else f"{i},{t}" for i, t, s in cells]
    rows[-1] = rows[-1].replace('"q"', '"""q"""', 1)
    path = tmp_path / "truth.csv"
    header = "id,target,Usage\n" if usage else "id,target\n"
    path.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    spec = TaskSpec(
        id_column="id", target_columns=("target",), task_type="binary", primary_metric="roc_auc"
    )

    summary = truth_summary(load_truth(path, spec))

    names = [s.lower() if usage else "both" for s in splits]
    text = "".join(f"{i}\t{n}\n" for i, n in zip(ids, names, strict=True))
    assert summary["split_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    public = sum(n in ("public", "both") for n in names)
    private = sum(n in ("private", "both") for n in names)
    assert summary["rows"] == {"public": public, "private": private}
