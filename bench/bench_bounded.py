"""Benchmark: scoring a gzip bomb of well-formed rows (2 GB once decompressed) against
scoring the plain, valid, test-sized file, for a 1,000,000-row binary task.

    .venv/bin/python bench/bench_bounded.py [--rows 1000000] [--bomb-gb 2] [--repeat 3]

Each run is a fresh subprocess doing what InProcessScorer does: load the ground truth, then
validate (and, for the valid file, score) the submission. Runs of the three files are
interleaved. Two bombs: short rows like the valid file's ("r0000000,0.500000"), refused by
the row limit; and rows as long as the byte limit allows on average (the number padded with
spaces, still well formed), refused by the byte limit, the most memory a bomb can take.
Deflate compresses at most about 1:1000, so 2 GB of rows is a gzip of 2 to 6 MB.
Targets: peak RSS of a bomb <= 1.5x the valid file's, and refused within 2 s.
"""

from __future__ import annotations

import argparse
import gzip
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
sys.path.insert(0, str(ROOT))

from scoring.spec import TaskSpec  # noqa: E402
from scoring.validation import prediction_limits  # noqa: E402

SPEC = {"id_column": "id", "target_columns": ["target"], "task_type": "binary",
        "primary_metric": "roc_auc"}  # fmt: skip

# The peak is VmHWM, reset (clear_refs) before the submission is read, so "validation MB"
# is what the submission took above the loaded ground truth; "peak MB" is the process's.
CHILD = """
import json, sys, time
from pathlib import Path
def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
from scoring.evaluate import evaluate, load_truth
from scoring.spec import TaskSpec
spec = TaskSpec.from_dict(json.loads(sys.argv[3]))
truth = load_truth(Path(sys.argv[1]), spec)
peak_before = status("VmHWM")
Path("/proc/self/clear_refs").write_text("5")
before = status("VmRSS")
started = time.perf_counter()
evaluation = evaluate(predictions_path=Path(sys.argv[2]), truth=truth, spec=spec)
seconds = time.perf_counter() - started
peak = status("VmHWM")
print(json.dumps({"seconds": seconds, "peak": max(peak, peak_before), "work": peak - before,
                  "problems": [p.message for p in evaluation.problems], "ok": evaluation.ok}))
"""


def write_files(directory: Path, rows: int, bomb_bytes: int) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    ids = np.array([f"r{i:07d}" for i in range(rows)])
    target = rng.integers(0, 2, size=rows)
    truth = directory / "truth.csv"
    pd.DataFrame({"id": ids, "target": target}).to_csv(truth, index=False)
    score = 1 / (1 + np.exp(-(target - 0.5) * 2 - rng.normal(size=rows)))
    order = rng.permutation(rows)
    valid = directory / "predictions.csv"
    frame = pd.DataFrame({"id": ids[order], "target": score[order]})
    frame.to_csv(valid, index=False, float_format="%.6f")
    limits = prediction_limits(TaskSpec.from_dict(SPEC), ids)
    widest = limits.max_bytes // (limits.max_rows or 1)
    short = b"r0000000,0.500000\n"
    files = {"truth": truth, "valid file": valid}
    files["bomb, short rows"] = _bomb(directory / "short.csv.gz", short, bomb_bytes)
    wide = short[:-1].ljust(widest - 1) + b"\n"
    files["bomb, widest rows"] = _bomb(directory / "wide.csv.gz", wide, bomb_bytes)
    return files


def _bomb(path: Path, row: bytes, size: int) -> Path:
    """Rows that expand to `size` bytes: one 16 MiB block compressed once, repeated as
    gzip members (which every gzip reader reads as one stream)."""
    block = row * ((16 << 20) // len(row))
    member = gzip.compress(block, 9)
    with path.open("wb") as f:
        f.write(gzip.compress(b"id,target\n"))
        for _ in range(size // len(block)):
            f.write(member)
    return path


def run(truth: Path, predictions: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(truth), str(predictions), json.dumps(SPEC)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def say(line: str) -> None:
    # A report on stdout is this script's purpose (ruff bans print in project code).
    sys.stdout.write(line + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark refusing a gzip bomb.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bomb-gb", type=float, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="heldout-bench-") as tmp:
        files = write_files(Path(tmp), args.rows, int(args.bomb_gb * 10**9))
        sizes = {name: path.stat().st_size for name, path in files.items()}
        kinds = [name for name in files if name != "truth"]
        results: dict[str, list[dict]] = {name: [] for name in kinds}
        started = time.perf_counter()
        for _ in range(args.repeat):
            for name in kinds:  # interleaved: background load falls on all alike
                results[name].append(run(files["truth"], files[name]))
        report(results, sizes, args, time.perf_counter() - started)


def report(results: dict[str, list[dict]], sizes: dict[str, int], args, total: float) -> None:
    mb = 10**6

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    say(
        f"{args.rows:,} test rows; valid file {sizes['valid file'] / mb:.1f} MB; bombs expand "
        f"to {args.bomb_gb:g} GB; medians of {args.repeat} runs ({total:.0f} s in all)"
    )
    say(
        f"{'':18} {'gzip MB':>8} {'seconds':>8} {'peak MB':>8} {'valid. MB':>9} {'peak /valid':>11}"
    )
    valid_peak = median("valid file", "peak")
    for name in results:
        gz = f"{sizes[name] / mb:8.2f}" if name.startswith("bomb") else f"{'-':>8}"
        say(
            f"{name:18} {gz} {median(name, 'seconds'):8.2f} {median(name, 'peak') / mb:8.0f} "
            f"{median(name, 'work') / mb:9.0f} {median(name, 'peak') / valid_peak:10.2f}x"
        )
    say("peak MB: the process's peak RSS; valid. MB: its growth while reading the submission")
    say("targets: a bomb's peak <= 1.5x the valid file's, refused within 2 s")
    for name, runs in results.items():
        say(f"{name}: {'scored' if runs[0]['ok'] else runs[0]['problems'][0]}")


if __name__ == "__main__":
    main()
