"""Command line entry point of the scorer image, and the host's reader of its output.

    python -m scoring.cli --spec spec.json --predictions FILE --truth FILE --out DIR

writes DIR/result.json and, for a valid submission, DIR/rows.npy (float32 per ground-truth
row) and DIR/influence.npz (the primary metric's per-row pseudo-values on each split,
scoring.influence; absent from the output of older images). An invalid submission is a result, not a failure: the exit status is 0 either way,
2 for bad arguments, and 1 with a traceback for anything unexpected.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scoring.evaluate import ROW_KINDS, SPLITS, Evaluation, Truth, evaluate, load_truth
from scoring.influence import RowInfluence, influence_dump, influence_load
from scoring.metrics import METRICS
from scoring.spec import TaskSpec
from scoring.validation import Problem

RESULT_NAME = "result.json"
ROWS_NAME = "rows.npy"
INFLUENCE_NAME = "influence.npz"
MAX_RESULT_BYTES = 16 << 20  # a result lists at most max_problems problems; far below this
# The libraries whose versions every result reports (docs/manifest.md).
LIBRARIES = ("numpy", "pandas", "pyarrow", "scikit-learn", "scipy")


def main(argv: list[str] | None = None, *, preloaded: tuple[TaskSpec, Truth] | None = None) -> int:
    """`preloaded`: the spec and truth the arguments name, loaded already (a warm scorer,
    scoring.warm_server, loads them once for all its submissions)."""
    parser = argparse.ArgumentParser(
        prog="python -m scoring.cli", description="Validate and score a submission."
    )
    parser.add_argument("--spec", type=Path, required=True, help="task spec as JSON")
    parser.add_argument("--predictions", type=Path, required=True, help="CSV, CSV.gz or Parquet")
    parser.add_argument("--truth", type=Path, required=True, help="ground truth, same formats")
    parser.add_argument("--out", type=Path, required=True, help="directory for the results")
    parser.add_argument("--max-problems", type=int, default=100)
    args = parser.parse_args(argv)
    for option in ("spec", "predictions", "truth"):
        if not getattr(args, option).is_file():
            parser.error(f"--{option}: {getattr(args, option)} is not a file")
    if preloaded is not None:
        spec, truth = preloaded
    else:
        try:
            spec = TaskSpec.from_dict(json.loads(args.spec.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            parser.error(f"--spec: {exc}")
        truth = load_truth(args.truth, spec)
    evaluation = evaluate(
        predictions_path=args.predictions, truth=truth, spec=spec, max_problems=args.max_problems
    )
    provenance = {"libraries": library_versions(), "truth": truth_summary(truth)}
    write_result(args.out, evaluation, provenance=provenance)
    return 0


def library_versions() -> dict[str, str]:
    """Python's version and those of the libraries that compute the scores, as installed."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def truth_summary(truth: Truth, piece: int = 1 << 16) -> dict[str, Any]:
    """What identifies the split: split_sha256 is the sha256 of one "<id>\t<usage>\n" line
    per ground-truth row, in file order, UTF-8, usage being public, private or both (no
    usage column); rows counts each split's rows."""
    public, private = truth.splits["public"], truth.splits["private"]
    # The lines are joined by Arrow, a piece at a time, and hashed straight from its buffer.
    usage = np.where(public & private, 2, np.where(public, 0, 1))
    ends = pa.array(["public\n", "private\n", "both\n"])
    sha = hashlib.sha256()
    for start in range(0, len(usage), piece):
        ids = truth.id_text.slice(start, piece)
        lines = pc.binary_join_element_wise(ids, ends.take(usage[start : start + piece]), "\t")
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
        first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
        sha.update(memoryview(lines.buffers()[2])[first:last])
    return {
        "split_sha256": sha.hexdigest(),
        "rows": {"public": int(public.sum()), "private": int(private.sum())},
    }


def write_result(
    out_dir: Path, evaluation: Evaluation, *, provenance: dict[str, Any] | None = None
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if evaluation.row_values is not None:
        np.save(out_dir / ROWS_NAME, evaluation.row_values.astype(np.float32), allow_pickle=False)
    if evaluation.influence:
        (out_dir / INFLUENCE_NAME).write_bytes(influence_dump(evaluation.influence))
    result = {
        "problems": [p.to_dict() for p in evaluation.problems],
        "total_problems": evaluation.total_problems,
        "scores": evaluation.scores,
        "row_kind": evaluation.row_kind,
    }
    if provenance:
        result["provenance"] = provenance
    # Written last and renamed into place, so a result.json is always complete.
    partial = out_dir / f".{RESULT_NAME}.partial"
    partial.write_text(json.dumps(result, allow_nan=False, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, out_dir / RESULT_NAME)


def read_result(out_dir: Path, *, expected_rows: int | None = None) -> Evaluation:
    """Read what main() wrote. The directory came out of a sandbox, so everything is checked;
    anything malformed raises ValueError."""
    path = Path(out_dir) / RESULT_NAME
    if not path.is_file() or path.stat().st_size > MAX_RESULT_BYTES:
        raise ValueError(f"{RESULT_NAME} is missing or larger than {MAX_RESULT_BYTES} bytes.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{RESULT_NAME} is not valid JSON: {exc}") from exc
    _expect(isinstance(data, dict), "the result is not a JSON object")
    problems = [_problem(p) for p in _typed(data.get("problems"), list, "problems")]
    total = _typed(data.get("total_problems"), int, "total_problems")
    _expect(total >= len(problems), "total_problems is smaller than the problems listed")
    row_kind = _typed(data.get("row_kind"), str, "row_kind")
    _expect(row_kind in ROW_KINDS.values(), f"unknown row_kind {row_kind!r}")
    scores = _scores(data.get("scores"))
    provenance = _provenance(data.get("provenance"))
    if total:
        _expect(not scores, "an invalid submission has scores")
        return Evaluation(problems, total, {}, None, row_kind, provenance)
    _expect(set(scores) == set(SPLITS), "a valid submission needs public and private scores")
    rows = _rows(Path(out_dir) / ROWS_NAME, expected_rows)
    influence = _influence(Path(out_dir) / INFLUENCE_NAME, len(rows))
    return Evaluation([], 0, scores, rows, row_kind, provenance, influence=influence)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{RESULT_NAME} contains {name}, which is not a number")


def _expect(condition: bool, reason: str) -> None:
    if not condition:
        raise ValueError(f"Malformed {RESULT_NAME}: {reason}.")


def _typed(value: Any, kind: type | tuple[type, ...], name: str) -> Any:
    # bool is an int in Python, but true is never a count or a score.
    kinds = kind if isinstance(kind, tuple) else (kind,)
    expected = " or ".join(k.__name__ for k in kinds)
    _expect(isinstance(value, kinds) and not isinstance(value, bool), f"{name} is not {expected}")
    return value


def _problem(data: Any) -> Problem:
    _expect(isinstance(data, dict), "a problem is not an object")
    code = _typed(data.get("code"), str, "problem code")
    message = _typed(data.get("message"), str, "problem message")
    line, column = data.get("line"), data.get("column")
    _expect(line is None or (isinstance(line, int) and not isinstance(line, bool)), "bad line")
    _expect(column is None or isinstance(column, str), "bad column")
    return Problem(code=code, message=message, line=line, column=column)


def _scores(data: Any) -> dict[str, dict[str, float | None]]:
    scores: dict[str, dict[str, float | None]] = {}
    for split, by_metric in _typed(data, dict, "scores").items():
        _expect(split in SPLITS, f"unknown split {split!r}")
        scores[split] = {}
        for metric, value in _typed(by_metric, dict, f"scores of {split}").items():
            _expect(metric in METRICS, f"unknown metric {metric!r}")
            if value is not None:
                number = _typed(value, (int, float), f"{split} {metric}")
                _expect(math.isfinite(number), f"{split} {metric} is not finite")
                value = float(number)
            scores[split][metric] = value
    return scores


def _provenance(data: Any) -> dict[str, Any]:
    """The optional provenance block (absent from results of older images)."""
    if data is None:
        return {}
    _typed(data, dict, "provenance")
    libraries = _typed(data.get("libraries"), dict, "provenance libraries")
    for name, version in libraries.items():
        _expect(isinstance(name, str) and len(name) <= 40, "a library name is not a short string")
        _expect(isinstance(version, str) and len(version) <= 40, f"{name}'s version is not short")
    truth = _typed(data.get("truth"), dict, "provenance truth")
    digest = _typed(truth.get("split_sha256"), str, "split_sha256")
    _expect(len(digest) == 64 and set(digest) <= set("0123456789abcdef"), "bad split_sha256")
    rows = _typed(truth.get("rows"), dict, "provenance rows")
    _expect(set(rows) == set(SPLITS), "provenance rows must count public and private rows")
    counts = {split: _typed(rows[split], int, f"{split} rows") for split in SPLITS}
    return {"libraries": dict(libraries), "truth": {"split_sha256": digest, "rows": counts}}


def _rows(path: Path, expected_rows: int | None) -> np.ndarray:
    try:
        rows = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{ROWS_NAME} is missing or unreadable: {exc}") from exc
    _expect(rows.dtype == np.float32 and rows.ndim == 1, f"{ROWS_NAME} is not a float32 vector")
    if expected_rows is not None:
        _expect(
            len(rows) == expected_rows, f"{ROWS_NAME} has {len(rows)} rows, not {expected_rows}"
        )
    return rows


def _influence(path: Path, rows: int) -> dict[str, RowInfluence]:
    """The optional pseudo-values: at most one float32 and one int8 per row and split,
    stored uncompressed (a compressed member could expand without bound)."""
    if not path.is_file():
        return {}
    _expect(path.stat().st_size <= 10 * rows + (1 << 16), f"{INFLUENCE_NAME} is too large")
    try:
        with zipfile.ZipFile(path) as archive:
            stored = all(m.compress_type == zipfile.ZIP_STORED for m in archive.infolist())
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{INFLUENCE_NAME} is unreadable: {exc}") from exc
    _expect(stored, f"{INFLUENCE_NAME} has compressed members")
    splits = influence_load(path.read_bytes())
    for split, found in splits.items():
        _expect(len(found.values) <= rows, f"{INFLUENCE_NAME} has too many {split} rows")
        _expect(found.transform in ("identity", "sqrt"), f"unknown transform in {INFLUENCE_NAME}")
        _expect(
            found.strata is None or len(found.strata) == len(found.values),
            f"{INFLUENCE_NAME}'s {split} strata do not match its values",
        )
    return splits


if __name__ == "__main__":
    sys.exit(main())
