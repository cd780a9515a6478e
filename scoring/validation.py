"""Check prediction and ground-truth files, reporting every problem at once.

Files are read by scoring.tables (CSV, gzipped CSV or Parquet, every CSV column as text),
then converted with vectorised casts here; the slower
diagnostic passes only run when a fast one fails, so a valid file costs little more than
reading it.

Line numbers are physical lines with the header on line 1, assuming no quoted field spans
several lines. Parquet rows are numbered as if the file were such a CSV (row index + 2).
Ids are compared as exact strings ("007" is not "7"); labels are compared with
spec.canonical_label ("1.0" is "1").

Reading is bounded (spec.ReadLimits): a submission's limits derive from the test set (its
rows, the longest id) and the spec, the ground truth's from the spec alone, unless the
caller passes its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scoring.spec import ReadLimits, TaskSpec, canonical_label
from scoring.tables import (
    Lines,
    Problem,
    Raw,
    Report,
    ValidationResult,
    empty_mask,
    is_text,
    read_raw,
)

__all__ = [
    "ROW_SUM_TOLERANCE",
    "Problem",
    "TruthCheck",
    "ValidationResult",
    "check_ground_truth",
    "prediction_limits",
    "read_table",
    "release_arrow_memory",
    "validate_ground_truth",
    "validate_predictions",
]

ROW_SUM_TOLERANCE = 1e-3
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(?i:nan|inf|infinity)$"
_PIECE = 1 << 16
Path = str | os.PathLike[str]


def _report_empty(column: pa.ChunkedArray, name: str, lines: Lines, report: Report) -> np.ndarray:
    empty = empty_mask(column)
    template = 'Line {line}: column "{column}" is empty.'
    report.add_rows("empty_value", np.flatnonzero(empty), lines, template, column=name)
    return empty


def _numbers(
    column: pa.ChunkedArray,
    name: str,
    lines: Lines,
    report: Report,
    *,
    unit: bool,
    hint: str = "",
) -> np.ndarray:
    """Float64 values of a column, NaN where a value is missing or not a number."""
    bad = np.zeros(len(column), dtype=bool)
    if not is_text(column):
        bad = _report_empty(column, name, lines, report)
        values = column.cast(pa.float64()).to_numpy()
    else:
        try:
            values = pc.cast(column, pa.float64()).to_numpy()
        except pa.ArrowInvalid:
            values, bad = _numbers_slowly(column, name, lines, report, hint)
    prefix = 'Line {line}, column "{column}": "{value}"'
    rows = np.flatnonzero(~np.isfinite(values) & ~bad)
    report.add_rows(
        "not_finite", rows, lines, prefix + " is not a finite number.", column=name, cells=column
    )
    if unit:
        with np.errstate(invalid="ignore"):
            rows = np.flatnonzero(((values < 0) | (values > 1)) & np.isfinite(values))
        template = prefix + " is outside the range 0 to 1."
        report.add_rows("out_of_range", rows, lines, template, column=name, cells=column)
    return values


def _numbers_slowly(
    column: pa.ChunkedArray, name: str, lines: Lines, report: Report, hint: str
) -> tuple[np.ndarray, np.ndarray]:
    """The diagnostic pass: accepts surrounding spaces and reports each bad cell."""
    empty = _report_empty(column, name, lines, report)
    text = pc.utf8_trim_whitespace(column)
    is_number = pc.match_substring_regex(text, _NUMBER)
    bad = ~is_number.to_numpy() & ~empty
    template = 'Line {line}, column "{column}": "{value}" is not a number.' + _literal(hint)
    report.add_rows("not_numeric", np.flatnonzero(bad), lines, template, column=name, cells=column)
    try:
        values = pc.cast(pc.if_else(is_number, text, "nan"), pa.float64()).to_numpy()
    except pa.ArrowInvalid:  # a spelling our pattern accepts and Arrow does not
        values = np.array([_float_or_nan(v) for v in text.to_pylist()])
    return values, bad | empty


def _float_or_nan(text: str | None) -> float:
    try:
        return float(text or "nan")
    except ValueError:
        return float("nan")


def _coded(
    column: pa.ChunkedArray,
    name: str,
    lines: Lines,
    report: Report,
    code_of: dict[str, int],
    normalise: Callable[[str], str],
    expected: str,
) -> np.ndarray:
    """code_of[normalise(cell)] for every cell; -1 where empty or unknown (both reported)."""
    text = as_text(column)
    empty = _report_empty(text, name, lines, report)
    uniques = pc.unique(text)
    # Labels have few distinct values, so mapping each distinct one in Python is cheap.
    by_unique = [code_of.get(normalise(u), -1) for u in uniques.to_pylist()]
    codes = np.array(by_unique, dtype=np.int32)[pc.index_in(text, value_set=uniques).to_numpy()]
    template = 'Line {line}, column "{column}": "{value}" ' + _literal(expected)
    unknown = np.flatnonzero((codes < 0) & ~empty)
    report.add_rows("unknown_label", unknown, lines, template, column=name, cells=text)
    return codes


def _label_codes(
    column: pa.ChunkedArray, name: str, classes: tuple[str, ...], lines: Lines, report: Report
) -> np.ndarray:
    """Index into classes of each cell (compared with canonical_label), -1 where invalid."""
    code_of = {canonical_label(c): i for i, c in enumerate(classes)}
    shown = ", ".join(f'"{c}"' for c in classes[:10]) + (", …" if len(classes) > 10 else "")
    expected = f"is not one of the classes ({shown})."
    return _coded(column, name, lines, report, code_of, canonical_label, expected)


def _public_mask(column: pa.ChunkedArray, name: str, lines: Lines, report: Report) -> np.ndarray:
    """True for Public rows, False for Private ones (case-insensitive)."""
    code_of = {"public": 1, "private": 0}
    expected = "should be Public or Private."
    codes = _coded(column, name, lines, report, code_of, lambda u: u.strip().lower(), expected)
    return codes == 1


def _literal(text: str) -> str:
    """Text to append to a str.format template as it is."""
    return text.replace("{", "{{").replace("}", "}}")


def _target_values(
    raw: Raw, where: dict[str, int], spec: TaskSpec, report: Report, *, truth: bool
) -> np.ndarray | None:
    """The target columns as ValidationResult.aligned describes them, in file order."""
    present = [(name, raw.columns[where[name]]) for name in spec.target_columns if name in where]
    complete = len(present) == len(spec.target_columns)
    kind, lines = spec.task_type, raw.lines
    if kind == "multiclass" or (kind == "binary" and truth):
        codes = [
            _label_codes(column, name, spec.classes, lines, report) for name, column in present
        ]
        if not complete:
            return None
        if kind == "binary":
            return codes[0].astype(np.float64)
        return np.asarray(spec.classes, dtype=object)[codes[0]]
    hint = ""
    if kind == "binary":
        hint = f' Submit the probability of class "{spec.classes[1]}", from 0 to 1.'
    unit = kind in ("binary", "probabilities")
    arrays = [_numbers(c, name, lines, report, unit=unit, hint=hint) for name, c in present]
    if not complete:
        return None
    if len(arrays) == 1:
        return arrays[0]
    matrix = np.column_stack(arrays)
    if kind == "probabilities":
        _check_row_sums(matrix, lines, report, one_hot=truth)
    return matrix


def _check_row_sums(matrix: np.ndarray, lines: Lines, report: Report, *, one_hot: bool) -> None:
    sums = matrix.sum(axis=1)
    if not one_hot:
        with np.errstate(invalid="ignore"):
            rows = np.flatnonzero(np.abs(sums - 1) > ROW_SUM_TOLERANCE)
        template = (
            "Line {line}: the probabilities add up to {total:.6g}; each row must add up to 1 "
            f"(within {ROW_SUM_TOLERANCE:g})."
        )
        report.add_rows("row_sum", rows, lines, template, total=sums)
        return
    fractional = ((matrix != 0) & (matrix != 1) & np.isfinite(matrix)).any(axis=1)
    template = "Line {line}: the ground truth must be one-hot (only 0 and 1 in each row)."
    report.add_rows("out_of_range", np.flatnonzero(fractional), lines, template)
    rows = np.flatnonzero((sums != 1) & ~fractional & np.isfinite(sums))
    template = "Line {line}: exactly one class must be 1, found {total:g}."
    report.add_rows("row_sum", rows, lines, template, total=sums)


def as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    text = column if is_text(column) else column.cast(pa.string())
    return text.fill_null("") if text.null_count else text


# --- columns and ids -------------------------------------------------------------------


def _locate(
    names: list[str], spec: TaskSpec, report: Report, *, optional: tuple[str, ...] = ()
) -> dict[str, int]:
    """Where each expected column is in the header; reports missing and unexpected ones."""
    found: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in found:
            message = (
                f'Line 1: column "{name}" appears twice (columns {found[name] + 1} and {i + 1}).'
            )
            report.add("unexpected_column", message, line=1, column=name)
        elif name in spec.columns or name in optional:
            found[name] = i
        else:
            report.add("unexpected_column", _unexpected(i, name, spec, names), line=1, column=name)
    expected = ", ".join(f'"{n}"' for n in spec.columns)
    for name in spec.columns:
        if name == spec.id_column and name not in found:
            message = f'Line 1: the header has no id column "{name}".'
            report.add("missing_id_column", message, line=1, column=name)
        elif name not in found:
            message = f'Line 1: the header has no column "{name}"; expected {expected} (any order).'
            report.add("missing_column", message, line=1, column=name)
    return found


def _unexpected(i: int, name: str, spec: TaskSpec, names: list[str]) -> str:
    if not name:
        return (
            f"Line 1: column {i + 1} has no name; if it is a saved DataFrame index, "
            "write the file with index=False."
        )
    message = f'Line 1: column "{name}" is not expected.'
    similar = [c for c in spec.columns if c.lower() == name.lower() and c not in names]
    if similar:
        message += f' Did you mean "{similar[0]}"? Column names are case-sensitive.'
    return message


def _report_repeats(
    keys: np.ndarray, ids: pa.ChunkedArray, name: str, lines: Lines, report: Report
) -> None:
    """Report each row whose key (ignored when negative) appeared on an earlier row."""
    rows = np.flatnonzero(keys >= 0)
    order = rows[np.argsort(keys[rows], kind="stable")]
    sorted_keys = keys[order]
    repeat = np.r_[False, sorted_keys[1:] == sorted_keys[:-1]]
    first_row = order[np.flatnonzero(~repeat)][np.cumsum(~repeat) - 1]
    first_line = np.zeros(len(keys), dtype=np.int64)
    first_line[order[repeat]] = lines(first_row[repeat])
    template = 'Line {line}: id "{value}" appears again (first on line {first}).'
    report.add_rows(
        "duplicate_id",
        np.sort(order[repeat]),
        lines,
        template,
        column=name,
        cells=ids,
        first=first_line,
    )


def _align(
    raw: Raw, where: dict[str, int], spec: TaskSpec, truth_ids: pa.Array, report: Report
) -> np.ndarray:
    """For each row, the index of its id in truth_ids (-1 if unknown); reports id problems."""
    name, lines = spec.id_column, raw.lines
    ids = as_text(raw.columns[where[name]])
    empty = _report_empty(ids, name, lines, report)
    positions = _positions_if_same_ids(ids, truth_ids)
    if positions is not None:
        return positions
    positions = pc.index_in(ids, value_set=truth_ids).fill_null(-1).to_numpy()
    template = 'Line {line}: id "{value}" is not in the test set.'
    report.add_rows(
        "unknown_id",
        np.flatnonzero((positions < 0) & ~empty),
        lines,
        template,
        column=name,
        cells=ids,
    )
    counts = np.bincount(positions[positions >= 0], minlength=len(truth_ids))
    if counts.max(initial=0) > 1:
        _report_repeats(positions, ids, name, lines, report)
    if raw.num_rows != len(truth_ids):
        message = (
            f"The file has {raw.num_rows:,} rows; expected {len(truth_ids):,} (one per test id)."
        )
        report.add("wrong_row_count", message)
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        examples = ", ".join(f'"{truth_ids[int(i)].as_py()}"' for i in missing[:5])
        count = f"{len(missing):,} test ids are" if len(missing) > 1 else "1 test id is"
        report.add("missing_id", f"{count} missing from the file, e.g. {examples}.", column=name)
    return positions


def _positions_if_same_ids(ids: pa.ChunkedArray, truth_ids: pa.Array) -> np.ndarray | None:
    """The fast path: when the file holds exactly the (unique) test ids, sorting both
    aligns them; otherwise None, and the slower hash lookup finds what is wrong. (The hash
    lookup is a little faster on a valid file, but its table takes half as much memory
    again as these sorts.)"""
    if len(ids) != len(truth_ids):
        return None
    order, truth_order = pc.sort_indices(ids), pc.sort_indices(truth_ids)
    positions = np.empty(len(ids), dtype=np.int32 if len(ids) < 2**31 else np.int64)
    positions[order.to_numpy()] = truth_order.to_numpy()
    del order, truth_order
    # Checked a piece at a time against the file's own order, so only the test ids are
    # gathered, and never a whole sorted copy of either column.
    start = 0
    for chunk in ids.chunks:
        for offset in range(0, len(chunk), _PIECE):
            piece = chunk.slice(offset, _PIECE)
            expected = truth_ids.take(positions[start + offset : start + offset + len(piece)])
            if not pc.all(pc.equal(piece, expected)).as_py():
                return None
        start += len(chunk)
    return positions


def _repeat_keys(ids: pa.ChunkedArray) -> np.ndarray | None:
    """A number per row, the same for equal ids; None when no id repeats."""
    if len(ids) < 2:
        return None
    order = pc.sort_indices(ids)
    in_order = ids.take(order)
    same = pc.equal(in_order.slice(1), in_order.slice(0, len(ids) - 1)).to_numpy()
    if not same.any():
        return None
    keys = np.empty(len(ids), dtype=np.int64)
    keys[order.to_numpy()] = np.r_[0, np.cumsum(~same)]
    return keys


def _id_array(ids: np.ndarray | pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    array = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else pa.array(np.asarray(ids))
    return array if pa.types.is_string(array.type) else array.cast(pa.string())


# --- entry points ----------------------------------------------------------------------


def read_table(path: Path, limits: ReadLimits | None = None) -> pa.Table:
    """Read a CSV (every column as text), gzipped CSV or Parquet file into a table.

    Raises ValueError naming the problems when the file cannot be read as a table.
    """
    report = Report(max_problems=10)
    raw = read_raw(path, report, limits)
    if raw is None or not report.ok:
        raise ValueError(" ".join(p.message for p in report.result(None).problems))
    return pa.Table.from_arrays(raw.columns, names=raw.names)


def validate_predictions(
    path: Path,
    *,
    spec: TaskSpec,
    truth_ids: np.ndarray | pa.Array | pa.ChunkedArray,
    max_problems: int = 100,
    limits: ReadLimits | None = None,
) -> ValidationResult:
    """Check a submission against the test ids; aligned follows truth_ids' order.
    limits defaults to prediction_limits(spec, truth_ids)."""
    report = Report(max_problems)
    limits = limits or prediction_limits(spec, truth_ids)
    positions, values = _check_predictions(path, spec, truth_ids, report, limits)
    release_arrow_memory()
    if not report.ok or values is None or positions is None:
        return report.result(None)
    aligned = np.empty_like(values)
    aligned[positions] = values
    return report.result(aligned)


def release_arrow_memory() -> None:
    """Hand memory Arrow freed back to the system: Arrow's allocator keeps it for Arrow's
    own reuse, but what follows a read allocates with numpy."""
    pa.default_memory_pool().release_unused()


def prediction_limits(
    spec: TaskSpec, truth_ids: np.ndarray | pa.Array | pa.ChunkedArray
) -> ReadLimits:
    """The read limits of a submission to the test set of these ids."""
    ids = _id_array(truth_ids)
    longest = pc.max(pc.binary_length(ids)).as_py() if len(ids) else 0
    return ReadLimits.for_predictions(spec, test_rows=len(ids), id_bytes=longest or 0)


def _check_predictions(
    path: Path,
    spec: TaskSpec,
    truth_ids: np.ndarray | pa.Array | pa.ChunkedArray,
    report: Report,
    limits: ReadLimits,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Each row's index in truth_ids, and its values. Kept apart from the caller so that the
    file's columns are freed before the aligned copy is made."""
    raw = read_raw(path, report, limits)
    if raw is None:
        return None, None
    where = _locate(raw.names, spec, report)
    positions = None
    if spec.id_column in where:
        positions = _align(raw, where, spec, _id_array(truth_ids), report)
    return positions, _target_values(raw, where, spec, report, truth=False)


@dataclass
class TruthCheck:
    """validate_ground_truth's result plus what scoring needs from the file."""

    result: ValidationResult
    ids: pa.ChunkedArray | None = None
    public: np.ndarray | None = None  # None when the file has no usage column


def check_ground_truth(
    path: Path, *, spec: TaskSpec, max_problems: int = 100, limits: ReadLimits | None = None
) -> TruthCheck:
    """limits defaults to ReadLimits.for_truth(spec)."""
    report = Report(max_problems)
    raw = read_raw(path, report, limits or ReadLimits.for_truth(spec))
    if raw is None:
        return TruthCheck(report.result(None))
    where = _locate(raw.names, spec, report, optional=(spec.usage_column,))
    if raw.num_rows == 0:
        report.add("empty_file", "The file has a header but no rows.")
    values = _target_values(raw, where, spec, report, truth=True)
    ids = public = None
    if spec.id_column in where:
        ids = as_text(raw.columns[where[spec.id_column]])
        empty = _report_empty(ids, spec.id_column, raw.lines, report)
        keys = _repeat_keys(ids)
        if keys is not None:
            _report_repeats(np.where(empty, -1, keys), ids, spec.id_column, raw.lines, report)
    if spec.usage_column in where:
        usage = raw.columns[where[spec.usage_column]]
        public = _public_mask(usage, spec.usage_column, raw.lines, report)
    return TruthCheck(report.result(values), ids, public)


def validate_ground_truth(
    path: Path, *, spec: TaskSpec, max_problems: int = 100
) -> ValidationResult:
    """Check an organizer's ground-truth file; aligned holds its values in file order."""
    return check_ground_truth(path, spec=spec, max_problems=max_problems).result
