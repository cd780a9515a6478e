"""What the scorer CLI reports about itself in result.json: library versions and the split."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from scoring.cli import read_result, truth_summary
from scoring.evaluate import load_truth
from scoring.spec import TaskSpec

ROOT = Path(__file__).resolve().parents[2]
SPEC = TaskSpec(id_column="id", target_columns=("y",), task_type="binary", primary_metric="roc_auc")


def _run(folder: Path, truth: str) -> dict:
    (folder / "spec.json").write_text(json.dumps(SPEC.to_dict()))
    (folder / "truth.csv").write_text(truth)
    (folder / "p.csv").write_text("id,y\nb,0.4\na,0.8\nc,0.3\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scoring.cli",
            "--spec",
            "spec.json",
            "--predictions",
            "p.csv",
            "--truth",
            "truth.csv",
            "--out",
            "out",
        ],
        cwd=folder,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads((folder / "out" / "result.json").read_text())


def test_the_result_reports_the_libraries_and_the_split(tmp_path):
    result = _run(tmp_path, "id,y,Usage\na,1,Public\nb,0,private\nc,1,Private\n")

    libraries = result["provenance"]["libraries"]
    assert libraries["scikit-learn"] == metadata.version("scikit-learn")
    assert libraries["numpy"] == metadata.version("numpy")
    assert libraries["python"] == sys.version.split()[0]
    expected = hashlib.sha256(b"a\tpublic\nb\tprivate\nc\tprivate\n").hexdigest()
    assert result["provenance"]["truth"] == {
        "split_sha256": expected,
        "rows": {"public": 1, "private": 2},
    }
    assert read_result(tmp_path / "out").provenance == result["provenance"]


def test_without_a_usage_column_every_row_counts_for_both_splits(tmp_path):
    result = _run(tmp_path, "id,y\na,1\nb,0\nc,1\n")

    assert result["provenance"]["truth"] == {
        "split_sha256": hashlib.sha256(b"a\tboth\nb\tboth\nc\tboth\n").hexdigest(),
        "rows": {"public": 3, "private": 3},
    }


def test_the_split_digest_follows_row_order_and_assignment_not_labels(tmp_path):
    def digest(text: str) -> str:
        path = tmp_path / "t.csv"
        path.write_text(text)
        return truth_summary(load_truth(path, SPEC))["split_sha256"]

    base = digest("id,y,Usage\na,1,Public\nb,0,Private\n")

    assert digest("id,y,Usage\na,0,Public\nb,1,Private\n") == base  # labels changed
    assert digest("id,y,Usage\nb,0,Private\na,1,Public\n") != base  # order changed
    assert digest("id,y,Usage\na,1,Private\nb,0,Public\n") != base  # assignment changed


@pytest.mark.parametrize(
    "provenance",
    [
        {"libraries": "numpy 2", "truth": {}},
        {"libraries": {}, "truth": {"split_sha256": "xyz", "rows": {"public": 1, "private": 1}}},
        {"libraries": {}, "truth": {"split_sha256": "0" * 64, "rows": {"public": 1}}},
        {"libraries": {"numpy": 2}, "truth": {"split_sha256": "0" * 64, "rows": {}}},
    ],
)
def test_a_malformed_provenance_is_rejected(tmp_path, provenance):
    result = _run(tmp_path, "id,y,Usage\na,1,Public\nb,0,Private\nc,1,Private\n")
    result["provenance"] = provenance
    (tmp_path / "out" / "result.json").write_text(json.dumps(result))

    with pytest.raises(ValueError, match=r"Malformed result\.json"):
        read_result(tmp_path / "out")


def test_a_result_without_provenance_from_an_older_image_still_reads(tmp_path):
    result = _run(tmp_path, "id,y,Usage\na,1,Public\nb,0,Private\nc,1,Private\n")
    del result["provenance"]
    (tmp_path / "out" / "result.json").write_text(json.dumps(result))

    assert read_result(tmp_path / "out").provenance == {}
