"""Benchmark: validating and scoring a 1,000,000-row binary submission, against the bare
minimum (pyarrow reads both files, aligns them by sorting on id, sklearn computes ROC AUC).

    .venv/bin/python bench/bench_scoring.py [--rows 1000000] [--repeat 3]

Each run is a fresh subprocess. Times are measured inside it, after imports (the work),
and from outside (the whole process). Both children import scikit-learn before the work
(the scorer would otherwise import it on first use, about a second and 110 MB that are
imports, not work; "process s" still counts them). Memory is the child's peak RSS, also
shown above its RSS right after the imports, relative to the combined size of the two
files. CPU seconds include every thread's (pyarrow reads the bare minimum's files on
several), and are steadier than wall time on a loaded machine.
Targets: work time <= 2x the bare minimum, peak memory above imports <= 4x the files.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SPEC = {
    "id_column": "id",
    "target_columns": ["target"],
    "task_type": "binary",
    "primary_metric": "roc_auc",
    "classes": ["0", "1"],
}

# Both children end with the same measurement, printed as one JSON line.
# The peak is VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's peak (Linux
# carries the forking process's high-water mark across exec).
MEASURE = """
import json
from pathlib import Path
def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
"""

BARE = (
    MEASURE
    + """
import sys, time
import pyarrow.compute as pc, pyarrow.csv as csv
from sklearn.metrics import roc_auc_score
after_imports = status("VmRSS")
started, cpu = time.perf_counter(), time.process_time()
truth, preds = csv.read_csv(sys.argv[1]), csv.read_csv(sys.argv[2])
y_true = truth["target"].take(pc.sort_indices(truth["id"])).to_numpy()
y_score = preds["target"].take(pc.sort_indices(preds["id"])).to_numpy()
value = roc_auc_score(y_true, y_score)
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
peak = status("VmHWM")
print(json.dumps({"seconds": elapsed, "cpu": cpu, "peak": peak, "after_imports": after_imports, "score": value}))
"""
)

OURS = (
    MEASURE
    + """
import sys, time
from pathlib import Path
from scoring.scorers import InProcessScorer
from scoring.spec import TaskSpec
# The scorer imports scikit-learn on first use (scoring.metrics._skm); the bare child
# imports it before its baseline, so this one does too: both measure the same work.
import sklearn.metrics
after_imports = status("VmRSS")
spec = TaskSpec.from_dict(json.loads(sys.argv[3]))
started, cpu = time.perf_counter(), time.process_time()
outcome = InProcessScorer().score(
    predictions_path=Path(sys.argv[2]), truth_path=Path(sys.argv[1]), spec=spec, workdir=Path(".")
)
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
assert outcome.evaluation.ok, outcome.evaluation.problems
peak = status("VmHWM")
scores = outcome.evaluation.scores
print(json.dumps({"seconds": elapsed, "cpu": cpu, "peak": peak, "after_imports": after_imports, "score": scores}))
"""
)


def write_files(directory: Path, rows: int, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    ids = np.array([f"r{i:07d}" for i in range(rows)])
    target = rng.integers(0, 2, size=rows)
    usage = np.where(rng.random(rows) < 0.3, "Public", "Private")
    score = 1 / (1 + np.exp(-(target - 0.5) * 2 - rng.normal(size=rows)))
    truth = directory / "truth.csv"
    pd.DataFrame({"id": ids, "target": target, "Usage": usage}).to_csv(truth, index=False)
    # Submissions rarely keep the ground truth's order; make the scorer align them.
    order = rng.permutation(rows)
    predictions = directory / "predictions.csv"
    frame = pd.DataFrame({"id": ids[order], "target": score[order]})
    frame.to_csv(predictions, index=False, float_format="%.6f")
    return truth, predictions


def run(code: str, truth: Path, predictions: Path) -> dict:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", code, str(truth), str(predictions), json.dumps(SPEC)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(completed.stdout.strip().splitlines()[-1])
    measured["process_seconds"] = time.perf_counter() - started
    return measured


def say(line: str) -> None:
    # A report on stdout is this script's purpose (ruff bans print in project code).
    sys.stdout.write(line + "\n")


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark validating and scoring.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="heldout-bench-") as tmp:
        truth, predictions = write_files(Path(tmp), args.rows)
        size = truth.stat().st_size + predictions.stat().st_size
        results: dict[str, list[dict]] = {"bare minimum": [], "InProcessScorer": []}
        # Alternating the two spreads any background load evenly over both.
        for _ in range(args.repeat):
            results["bare minimum"].append(run(BARE, truth, predictions))
            results["InProcessScorer"].append(run(OURS, truth, predictions))
    report(results, size, args.rows)


def report(results: dict[str, list[dict]], size: int, rows: int) -> None:
    mb = 1 << 20
    runs_count = len(results["bare minimum"])
    say(f"{rows:,} rows; files {size / mb:.1f} MB together; medians of {runs_count} runs")
    say(
        f"{'':16} {'work s':>7} {'cpu s':>6} {'process s':>9} {'peak MB':>8} {'work MB':>8} {'/files':>7}"
    )
    for name, runs in results.items():
        peak, base = median_of(runs, "peak"), median_of(runs, "after_imports")
        say(
            f"{name:16} {median_of(runs, 'seconds'):7.2f} {median_of(runs, 'cpu'):6.2f} "
            f"{median_of(runs, 'process_seconds'):9.2f} {peak / mb:8.0f} {(peak - base) / mb:8.0f} "
            f"{(peak - base) / size:7.2f}"
        )
    bare, ours = results["bare minimum"], results["InProcessScorer"]
    ratios = {key: median_of(ours, key) / median_of(bare, key) for key in ("seconds", "cpu")}
    say(f"time ratio: work {ratios['seconds']:.2f}x, cpu {ratios['cpu']:.2f}x (target <= 2x)")
    say("work MB = peak RSS minus RSS after imports; /files = work MB / files (target <= 4x)")
    say(f"scores: bare {bare[0]['score']:.6f}; ours {ours[0]['score']}")


if __name__ == "__main__":
    main()
