"""Check prediction and ground-truth files, reporting every problem at once.

Files may be CSV, gzipped CSV or Parquet (detected by their first bytes). CSV is read by
pyarrow with every column as text, then converted with vectorised casts; the slower
diagnostic passes only run when a fast one fails, so a valid file costs little more than
reading it.

Line numbers are physical lines with the header on line 1, assuming no quoted field spans
several lines. Parquet rows are numbered as if the file were such a CSV (row index + 2).
Ids are compared as exact strings ("007" is not "7"); labels are compared with
spec.canonical_label ("1.0" is "1").
"""

from __future__ import annotations

import csv
import gzip
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from scoring.spec import TaskSpec, canonical_label

ROW_SUM_TOLERANCE = 1e-3
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(?i:nan|inf|infinity)$"
_HEAD_BYTES = 1 << 16
_PIECE = 1 << 16
Path = str | os.PathLike[str]


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    line: int | None = None
    column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ValidationResult:
    problems: list[Problem]
    total_problems: int
    aligned: np.ndarray | None

    @property
    def ok(self) -> bool:
        return self.total_problems == 0


class _Lines:
    """Maps table rows to physical lines, accounting for lines that produced no row."""

    def __init__(self, skipped: list[int] | tuple[int, ...] | np.ndarray = ()) -> None:
        # Once sorted, skipped[j] - j is the row-space position where line skipped[j] sat.
        skipped = np.sort(np.asarray(skipped, dtype=np.int64))
        self._shifts = skipped - np.arange(len(skipped))

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        lines = np.asarray(rows, dtype=np.int64) + 2
        return lines + np.searchsorted(self._shifts, lines, side="right")


class _Report:
    """Collects problems, keeping at most max_problems per (code, column).

    Each check adds its problems in file order, so sorting the kept ones by line and
    cutting at max_problems gives the first problems of the whole file.
    """

    def __init__(self, max_problems: int) -> None:
        self.max_problems = max_problems
        self.kept: list[Problem] = []
        self.total = 0
        self._kept_per_kind: dict[tuple[str, str | None], int] = {}

    @property
    def ok(self) -> bool:
        return self.total == 0

    def add(
        self, code: str, message: str, *, line: int | None = None, column: str | None = None
    ) -> None:
        self.total += 1
        kind = (code, column)
        if self._kept_per_kind.get(kind, 0) < self.max_problems:
            self._kept_per_kind[kind] = self._kept_per_kind.get(kind, 0) + 1
            self.kept.append(Problem(code, message, line, column))

    def add_rows(
        self,
        code: str,
        rows: np.ndarray,
        lines: _Lines,
        template: str,
        *,
        column: str | None = None,
        cells: pa.ChunkedArray | None = None,
        **per_row: np.ndarray,
    ) -> None:
        """One problem per row. The template may use {line}, {column}, {value} (the row's
        cell in `cells`) and any per_row array, which is indexed by row."""
        shown = rows[: self.max_problems]
        for row, line in zip(shown.tolist(), lines(shown).tolist(), strict=True):
            value = _cell(cells, row) if cells is not None else ""
            extra = {key: values[row] for key, values in per_row.items()}
            message = template.format(line=line, column=column, value=value, **extra)
            self.add(code, message, line=line, column=column)
        self.total += len(rows) - len(shown)

    def result(self, aligned: np.ndarray | None) -> ValidationResult:
        # Problems about the whole file sort after the header's (line 1), before the rows'.
        ordered = sorted(self.kept, key=lambda p: 1.5 if p.line is None else p.line)
        return ValidationResult(
            ordered[: self.max_problems], self.total, aligned if self.ok else None
        )


@dataclass
class _Raw:
    """A file read into columns named by its header (text for CSV, typed for Parquet)."""

    names: list[str]
    columns: list[pa.ChunkedArray]
    lines: _Lines = field(default_factory=_Lines)

    @property
    def num_rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0


# --- reading ---------------------------------------------------------------------------


def read_table(path: Path) -> pa.Table:
    """Read a CSV (every column as text), gzipped CSV or Parquet file into a table.

    Raises ValueError naming the problems when the file cannot be read as a table.
    """
    report = _Report(max_problems=10)
    raw = _read(path, report)
    if raw is None or not report.ok:
        raise ValueError(" ".join(p.message for p in report.result(None).problems))
    return pa.Table.from_arrays(raw.columns, names=raw.names)


def _open(path: Path, gzipped: bool) -> gzip.GzipFile | IO[bytes]:
    return gzip.GzipFile(path, "rb") if gzipped else open(path, "rb")


def _read(path: Path, report: _Report) -> _Raw | None:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"PAR1":
        return _read_parquet(path, report)
    if magic == b"PK\x03\x04":
        report.add("not_csv", "This is a ZIP archive or an Excel workbook, not a CSV file.")
        return None
    gzipped = magic[:2] == b"\x1f\x8b"
    try:
        with _open(path, gzipped) as f:
            header = f.readline(_HEAD_BYTES)
            head = header + f.read(_HEAD_BYTES)
    except (OSError, EOFError) as exc:
        report.add("not_csv", f"The file looks gzipped but could not be decompressed ({exc}).")
        return None
    if not _looks_like_text(head, report):
        return None
    names = _parse_header(header, report)
    if names is None:
        _report_bad_utf8(path, gzipped, report)
        return None
    return _read_csv_rows(path, gzipped, names, report) if names else None


def _looks_like_text(head: bytes, report: _Report) -> bool:
    if not head.strip():
        report.add("empty_file", "The file is empty.")
        return False
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        report.add("not_utf8", "The file is encoded as UTF-16; save it as UTF-8.", line=1)
        return False
    zero = head.find(b"\x00")
    if zero >= 0:
        report.add("not_csv", f"This is a binary file, not CSV text (byte {zero + 1} is zero).")
        return False
    return True


def _parse_header(header: bytes, report: _Report) -> list[str] | None:
    """The header's column names; None if undecodable, [] if reported as unusable."""
    try:
        text = header.decode("utf-8").removeprefix("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError:
        return None
    names = [name.strip() for name in next(csv.reader([text]), [])]
    separator = next((s for s in (";", "\t", "|") if len(names) == 1 and s in names[0]), None)
    if separator is not None:
        shown = "tabs" if separator == "\t" else f'"{separator}"'
        report.add("not_csv", f"Line 1: the columns seem separated by {shown}; use commas.", line=1)
        return []
    return names


def _read_csv_rows(path: Path, gzipped: bool, names: list[str], report: _Report) -> _Raw | None:
    skipped: list[int] = []
    try:
        table = _arrow_csv(path, gzipped, len(names), skipped, report)
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc):
            _report_bad_utf8(path, gzipped, report)
        else:
            match = re.search(r"Row #(\d+)", str(exc))
            line = int(match.group(1)) if match else None
            report.add("not_csv", f"The file is not valid CSV ({exc}).", line=line)
        return None
    except (pa.ArrowException, OSError, EOFError) as exc:
        report.add("not_csv", f"The file could not be read ({exc}).")
        return None
    return _without_blank_rows(_Raw(names, list(table.columns), _Lines(skipped)), skipped)


def _arrow_csv(
    path: Path, gzipped: bool, width: int, skipped: list[int], report: _Report
) -> pa.Table:
    def on_invalid_row(row: Any) -> str:
        # Rows with too few or too many fields are reported and left out of the table.
        skipped.append(row.number)
        if row.text.strip():
            fields = f"{row.actual_columns} field" + ("s" if row.actual_columns != 1 else "")
            message = f"Line {row.number} has {fields}, expected {row.expected_columns}."
            report.add("not_csv", message, line=row.number)
        return "skip"

    # Our own column names make duplicate or odd header names harmless.
    keys = [f"c{i}" for i in range(width)]
    source = pa.input_stream(path, compression="gzip") if gzipped else os.fspath(path)
    return pa_csv.read_csv(
        source,
        # One thread: pyarrow then knows the line of each bad row, and the peak memory is
        # much lower (parallel parsing holds many blocks at once) for a small cost in time.
        read_options=pa_csv.ReadOptions(column_names=keys, skip_rows=1, use_threads=False),
        parse_options=pa_csv.ParseOptions(
            invalid_row_handler=on_invalid_row, ignore_empty_lines=False
        ),
        convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(keys, pa.string())),
    )


def _without_blank_rows(raw: _Raw, skipped: list[int]) -> _Raw:
    """Drop empty lines (pyarrow keeps them as rows of empty strings) but keep line numbers."""
    if not raw.columns or pc.min(pc.binary_length(raw.columns[0])).as_py() != 0:
        return raw
    blank = np.logical_and.reduce([_empty_mask(c) for c in raw.columns])
    if not blank.any():
        return raw
    lines = _Lines(skipped + raw.lines(np.flatnonzero(blank)).tolist())
    keep = pa.array(~blank)
    return _Raw(raw.names, [c.filter(keep) for c in raw.columns], lines)


def _report_bad_utf8(path: Path, gzipped: bool, report: _Report) -> None:
    with _open(path, gzipped) as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = f"byte {exc.start + 1} (0x{line[exc.start]:02X})"
                report.add(
                    "not_utf8",
                    f"Line {number}: {byte} is not valid UTF-8; save the file as UTF-8.",
                    line=number,
                )


def _read_parquet(path: Path, report: _Report) -> _Raw | None:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        report.add("not_csv", f"The file starts like Parquet but could not be read ({exc}).")
        return None
    names = [str(name).strip() for name in table.column_names]
    columns = []
    for name, column in zip(names, table.columns, strict=True):
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if not (
            _is_text(column)
            or pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)
        ):
            kind = pa.string()
        try:
            columns.append(column.cast(kind))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            report.add(
                "not_csv",
                f'Column "{name}" has type {column.type}, which is not supported.',
                column=name,
            )
            return None
    return _Raw(names, columns)


# --- cells -----------------------------------------------------------------------------


def _is_text(column: pa.ChunkedArray) -> bool:
    return pa.types.is_string(column.type) or pa.types.is_large_string(column.type)


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    text = column if _is_text(column) else column.cast(pa.string())
    return text.fill_null("") if text.null_count else text


def _empty_mask(column: pa.ChunkedArray) -> np.ndarray:
    if not _is_text(column):
        return column.is_null().to_numpy()
    blank = pc.or_(pc.equal(pc.binary_length(column), 0), pc.utf8_is_space(column))
    return blank.fill_null(True).to_numpy()


def _cell(column: pa.ChunkedArray, row: int) -> str:
    value = column[row].as_py()
    return "" if value is None else str(value)


def _report_empty(column: pa.ChunkedArray, name: str, lines: _Lines, report: _Report) -> np.ndarray:
    empty = _empty_mask(column)
    template = 'Line {line}: column "{column}" is empty.'
    report.add_rows("empty_value", np.flatnonzero(empty), lines, template, column=name)
    return empty


def _numbers(
    column: pa.ChunkedArray,
    name: str,
    lines: _Lines,
    report: _Report,
    *,
    unit: bool,
    hint: str = "",
) -> np.ndarray:
    """Float64 values of a column, NaN where a value is missing or not a number."""
    bad = np.zeros(len(column), dtype=bool)
    if not _is_text(column):
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
    column: pa.ChunkedArray, name: str, lines: _Lines, report: _Report, hint: str
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
    lines: _Lines,
    report: _Report,
    code_of: dict[str, int],
    normalise: Callable[[str], str],
    expected: str,
) -> np.ndarray:
    """code_of[normalise(cell)] for every cell; -1 where empty or unknown (both reported)."""
    text = _as_text(column)
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
    column: pa.ChunkedArray, name: str, classes: tuple[str, ...], lines: _Lines, report: _Report
) -> np.ndarray:
    """Index into classes of each cell (compared with canonical_label), -1 where invalid."""
    code_of = {canonical_label(c): i for i, c in enumerate(classes)}
    shown = ", ".join(f'"{c}"' for c in classes[:10]) + (", …" if len(classes) > 10 else "")
    expected = f"is not one of the classes ({shown})."
    return _coded(column, name, lines, report, code_of, canonical_label, expected)


def _public_mask(column: pa.ChunkedArray, name: str, lines: _Lines, report: _Report) -> np.ndarray:
    """True for Public rows, False for Private ones (case-insensitive)."""
    code_of = {"public": 1, "private": 0}
    expected = "should be Public or Private."
    codes = _coded(column, name, lines, report, code_of, lambda u: u.strip().lower(), expected)
    return codes == 1


def _literal(text: str) -> str:
    """Text to append to a str.format template as it is."""
    return text.replace("{", "{{").replace("}", "}}")


def _target_values(
    raw: _Raw, where: dict[str, int], spec: TaskSpec, report: _Report, *, truth: bool
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


def _check_row_sums(matrix: np.ndarray, lines: _Lines, report: _Report, *, one_hot: bool) -> None:
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


# --- columns and ids -------------------------------------------------------------------


def _locate(
    names: list[str], spec: TaskSpec, report: _Report, *, optional: tuple[str, ...] = ()
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
    keys: np.ndarray, ids: pa.ChunkedArray, name: str, lines: _Lines, report: _Report
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
    raw: _Raw, where: dict[str, int], spec: TaskSpec, truth_ids: pa.Array, report: _Report
) -> np.ndarray:
    """For each row, the index of its id in truth_ids (-1 if unknown); reports id problems."""
    name, lines = spec.id_column, raw.lines
    ids = _as_text(raw.columns[where[name]])
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
    aligns them; otherwise None, and the slower hash lookup finds what is wrong."""
    if len(ids) != len(truth_ids):
        return None
    order, truth_order = pc.sort_indices(ids), pc.sort_indices(truth_ids)
    # Compared a piece at a time: sorted copies of both id columns would raise the peak.
    for start in range(0, len(ids), _PIECE):
        piece, truth_piece = order.slice(start, _PIECE), truth_order.slice(start, _PIECE)
        if not pc.all(pc.equal(ids.take(piece), truth_ids.take(truth_piece))).as_py():
            return None
    positions = np.empty(len(ids), dtype=np.int32 if len(ids) < 2**31 else np.int64)
    positions[order.to_numpy()] = truth_order.to_numpy()
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


def validate_predictions(
    path: Path,
    *,
    spec: TaskSpec,
    truth_ids: np.ndarray | pa.Array | pa.ChunkedArray,
    max_problems: int = 100,
) -> ValidationResult:
    """Check a submission against the test ids; aligned follows truth_ids' order."""
    report = _Report(max_problems)
    positions, values = _check_predictions(path, spec, truth_ids, report)
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


def _check_predictions(
    path: Path, spec: TaskSpec, truth_ids: np.ndarray | pa.Array | pa.ChunkedArray, report: _Report
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Each row's index in truth_ids, and its values. Kept apart from the caller so that the
    file's columns are freed before the aligned copy is made."""
    raw = _read(path, report)
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


def check_ground_truth(path: Path, *, spec: TaskSpec, max_problems: int = 100) -> TruthCheck:
    report = _Report(max_problems)
    raw = _read(path, report)
    if raw is None:
        return TruthCheck(report.result(None))
    where = _locate(raw.names, spec, report, optional=(spec.usage_column,))
    if raw.num_rows == 0:
        report.add("empty_file", "The file has a header but no rows.")
    values = _target_values(raw, where, spec, report, truth=True)
    ids = public = None
    if spec.id_column in where:
        ids = _as_text(raw.columns[where[spec.id_column]])
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
