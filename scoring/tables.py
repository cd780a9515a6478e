"""Reading prediction and ground-truth files into text columns, and the problem report.

Files may be CSV, gzipped CSV or Parquet (detected by their first bytes). CSV is read by
pyarrow with every column as text; scoring.validation then converts and checks the
columns. Line numbers are physical lines with the header on line 1 (Parquet rows are
numbered as if the file were such a CSV).

Every read is bounded (spec.ReadLimits): the bytes a file holds, its rows, columns and
line length. A gzipped CSV and Parquet are read a block at a time, a plain CSV whole once
its size and lines are counted. Past a limit reading stops and the report holds one
problem saying which (too_large, too_many_rows, too_many_columns, line_too_long), so the
memory a file takes is bounded by its limits, whatever its compression ratio.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from scoring.spec import LimitExceeded, Problem, ReadLimits, size_text

_HEAD_BYTES = 1 << 16
_BLOCK_BYTES = 1 << 20  # pyarrow's CSV block; a line longer than a block cannot be read
_PARQUET_BATCH_ROWS = 1 << 16
_NUMBER_BYTES = 24  # what a non-text Parquet cell counts for, as if written as text
Path = str | os.PathLike[str]


@dataclass
class ValidationResult:
    problems: list[Problem]
    total_problems: int
    aligned: np.ndarray | None

    @property
    def ok(self) -> bool:
        return self.total_problems == 0


class Lines:
    """Maps table rows to physical lines, accounting for lines that produced no row."""

    def __init__(self, skipped: list[int] | tuple[int, ...] | np.ndarray = ()) -> None:
        # Once sorted, skipped[j] - j is the row-space position where line skipped[j] sat.
        skipped = np.sort(np.asarray(skipped, dtype=np.int64))
        self._shifts = skipped - np.arange(len(skipped))

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        lines = np.asarray(rows, dtype=np.int64) + 2
        return lines + np.searchsorted(self._shifts, lines, side="right")


class Report:
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
        lines: Lines,
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
            value = cell(cells, row) if cells is not None else ""
            extra = {key: values[row] for key, values in per_row.items()}
            message = template.format(line=line, column=column, value=value, **extra)
            self.add(code, message, line=line, column=column)
        self.total += len(rows) - len(shown)

    def extend(self, other: Report) -> None:
        """Add what another report found (its total included)."""
        for problem in other.kept:
            self.add(problem.code, problem.message, line=problem.line, column=problem.column)
        self.total += other.total - len(other.kept)

    def result(self, aligned: np.ndarray | None) -> ValidationResult:
        # Problems about the whole file sort after the header's (line 1), before the rows'.
        ordered = sorted(self.kept, key=lambda p: 1.5 if p.line is None else p.line)
        return ValidationResult(
            ordered[: self.max_problems], self.total, aligned if self.ok else None
        )


@dataclass
class Raw:
    """A file read into columns named by its header (text for CSV, typed for Parquet)."""

    names: list[str]
    columns: list[pa.ChunkedArray]
    lines: Lines = field(default_factory=Lines)

    @property
    def num_rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0


# --- limits ----------------------------------------------------------------------------


class Budget:
    """Counts what a reader has taken from a file against its limits; raises
    LimitExceeded past one. A limit passed inside a pyarrow callback, which cannot raise,
    is kept in `exceeded`."""

    def __init__(self, limits: ReadLimits, too_large_as: str = "holds more than") -> None:
        self.limits = limits
        self.rows = 0  # rows read, skipped ones included
        self.text_bytes = 0  # the rows read as text: cells, separators, line ends
        self.exceeded: LimitExceeded | None = None
        self._too_large_as = too_large_as  # "The file <this> 48 MB, ..."

    def count_skipped(self, line: int, text: str) -> None:
        """A line the parser left out (too few or too many fields)."""
        self._count_rows(1)
        if len(text) > self.limits.max_line_bytes:
            raise self.limits.too_long(line)
        self._count_bytes(len(text) + 1)

    def take(
        self, columns: Sequence[pa.Array], first_row: int, line_of: Callable[[int], int]
    ) -> None:
        """A batch of rows, the first being row first_row of the table."""
        self._count_rows(len(columns[0]) if columns else 0)
        widths = _row_widths(columns)
        longer = np.flatnonzero(widths > self.limits.max_line_bytes)
        if len(longer):
            raise self.limits.too_long(line_of(first_row + int(longer[0])))
        self._count_bytes(int(widths.sum()) + len(widths))

    def _count_rows(self, n: int) -> None:
        self.rows += n
        if self.limits.max_rows is not None and self.rows > self.limits.max_rows:
            raise self.limits.too_many_rows()

    def _count_bytes(self, n: int) -> None:
        self.text_bytes += n
        if self.text_bytes > self.limits.max_bytes:
            raise self.limits.too_large(self._too_large_as)


def _row_widths(columns: Sequence[pa.Array]) -> np.ndarray:
    rows = len(columns[0]) if columns else 0
    widths = np.full(rows, max(len(columns) - 1, 0), dtype=np.int64)
    for column in columns:
        widths += _cell_bytes(column)
    return widths


def _cell_bytes(column: pa.Array) -> np.ndarray | int:
    kind = column.type
    if pa.types.is_dictionary(kind):
        if not is_text_type(kind.value_type) or len(column.dictionary) == 0:
            return _NUMBER_BYTES
        # Measured on the dictionary, so a repeated long value is never decoded.
        indices = np.asarray(column.indices.fill_null(0))
        return _text_lengths(column.dictionary)[indices]
    if is_text_type(kind):
        return _text_lengths(column)
    return _NUMBER_BYTES


def _text_lengths(array: pa.Array) -> np.ndarray:
    """Each cell's length in bytes, from the offsets buffer: numpy only, since small Arrow
    allocations between the kept batches' buffers would hold on to memory."""
    if len(array) == 0:
        return np.zeros(0, dtype=np.int64)
    large = pa.types.is_large_string(array.type)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64 if large else np.int32)
    return np.diff(offsets[array.offset : array.offset + len(array) + 1])


def is_text_type(kind: pa.DataType) -> bool:
    return any(kind == text for text in (pa.string(), pa.large_string(), pa.binary()))


# --- reading ---------------------------------------------------------------------------


def _open(path: Path, gzipped: bool) -> gzip.GzipFile | IO[bytes]:
    return gzip.GzipFile(path, "rb") if gzipped else open(path, "rb")


def read_raw(path: Path, report: Report, limits: ReadLimits | None = None) -> Raw | None:
    """The file's columns, or None with the reason in the report. limits defaults to the
    absolute caps (spec.ReadLimits())."""
    limits = limits or ReadLimits()
    with open(path, "rb") as f:
        magic = f.read(4)
    try:
        if magic == b"PAR1":
            return _read_parquet(path, report, limits)
        if magic == b"PK\x03\x04":
            report.add("not_csv", "This is a ZIP archive or an Excel workbook, not a CSV file.")
            return None
        return _read_csv(path, magic[:2] == b"\x1f\x8b", report, limits)
    except LimitExceeded as exc:
        report.add(exc.code, exc.message, line=exc.line)
        return None


def _read_csv(path: Path, gzipped: bool, report: Report, limits: ReadLimits) -> Raw | None:
    if not gzipped and os.path.getsize(path) > limits.max_bytes:
        raise limits.too_large(f"is {size_text(os.path.getsize(path))}, more than")
    try:
        with _open(path, gzipped) as f:
            header = f.readline(limits.max_line_bytes + 2)
            head = header + f.read(_HEAD_BYTES)
    except (OSError, EOFError) as exc:
        report.add("not_csv", f"The file looks gzipped but could not be decompressed ({exc}).")
        return None
    if not _looks_like_text(head, report):
        return None
    if len(header.rstrip(b"\r\n")) > limits.max_line_bytes:
        raise limits.too_long(1)
    names = _parse_header(header, report)
    if names is None:
        _report_bad_utf8(path, gzipped, report, limits)
        return None
    if len(names) > limits.max_columns:
        raise limits.too_many_columns(len(names))
    if not names:
        return None
    return _read_csv_rows(path, gzipped, names, report, limits, header_bytes=len(header))


def _looks_like_text(head: bytes, report: Report) -> bool:
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


def _parse_header(header: bytes, report: Report) -> list[str] | None:
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


def _read_csv_rows(
    path: Path,
    gzipped: bool,
    names: list[str],
    report: Report,
    limits: ReadLimits,
    *,
    header_bytes: int,
) -> Raw | None:
    skipped: list[int] = []
    budget = Budget(limits, "decompresses to more than" if gzipped else "holds more than")
    budget.text_bytes = header_bytes
    # Problems found on the way are kept only if no limit is passed: that one is the news.
    found = Report(report.max_problems)
    try:
        table = _arrow_csv(path, gzipped, len(names), skipped, found, budget)
    except pa.ArrowInvalid as exc:
        if budget.exceeded is not None:
            raise budget.exceeded from exc
        report.extend(found)
        if "straddling" in str(exc):
            raise limits.too_long(None, after=budget.rows + 1) from exc
        if "UTF8" in str(exc):
            _report_bad_utf8(path, gzipped, report, limits)
        else:
            match = re.search(r"Row #(\d+)", str(exc))
            line = int(match.group(1)) if match else None
            report.add("not_csv", f"The file is not valid CSV ({exc}).", line=line)
        return None
    except (pa.ArrowException, OSError, EOFError) as exc:
        report.extend(found)
        report.add("not_csv", f"The file could not be read ({exc}).")
        return None
    report.extend(found)
    return _without_blank_rows(Raw(names, list(table.columns), Lines(skipped)), skipped)


def _arrow_csv(
    path: Path, gzipped: bool, width: int, skipped: list[int], report: Report, budget: Budget
) -> pa.Table:
    limits = budget.limits

    def on_invalid_row(row: Any) -> str:
        # Rows with too few or too many fields are reported and left out of the table.
        skipped.append(row.number)
        try:
            budget.count_skipped(row.number, row.text)
        except LimitExceeded as exc:
            budget.exceeded = exc
            return "error"  # pyarrow then stops with ArrowInvalid
        if row.text.strip():
            fields = f"{row.actual_columns} field" + ("s" if row.actual_columns != 1 else "")
            message = f"Line {row.number} has {fields}, expected {row.expected_columns}."
            report.add("not_csv", message, line=row.number)
        return "skip"

    options = _csv_options(width, limits, on_invalid_row)
    if gzipped:
        stream = pa.input_stream(path, compression="gzip", buffer_size=_BLOCK_BYTES)
        reader = pa_csv.open_csv(stream, **options)
    else:
        # Its size is within the limits and its lines are counted first, so a plain file
        # is read whole: the streaming reader keeps about 10% more memory afterwards.
        _count_lines(path, limits)
        reader = pa_csv.read_csv(os.fspath(path), **options).to_reader()
    # A block at a time, so a limit stops a gzipped file's read before the next block.
    batches, rows = [], 0
    with reader:
        for batch in reader:
            budget.take(batch.columns, rows, lambda row: int(Lines(skipped)(np.array([row]))[0]))
            batches.append(batch)
            rows += batch.num_rows
    return pa.Table.from_batches(batches, schema=reader.schema)


def _csv_options(width: int, limits: ReadLimits, on_invalid_row: Any) -> dict[str, Any]:
    # Our own column names make duplicate or odd header names harmless.
    keys = [f"c{i}" for i in range(width)]
    return {
        # One thread: pyarrow then knows the line of each bad row, and the peak memory is
        # much lower (parallel parsing holds many blocks at once) for a small cost in time.
        "read_options": pa_csv.ReadOptions(
            column_names=keys,
            skip_rows=1,
            use_threads=False,
            block_size=max(_BLOCK_BYTES, limits.max_line_bytes + 2),
        ),
        "parse_options": pa_csv.ParseOptions(
            invalid_row_handler=on_invalid_row, ignore_empty_lines=False
        ),
        "convert_options": pa_csv.ConvertOptions(column_types=dict.fromkeys(keys, pa.string())),
    }


def _count_lines(path: Path, limits: ReadLimits) -> None:
    """Raises too_many_rows as soon as the file has more lines than a header and the rows
    allowed."""
    lines = 0
    with open(path, "rb") as f:
        while limits.max_rows is not None and (chunk := f.read(_BLOCK_BYTES)):
            lines += max(chunk.count(b"\n"), chunk.count(b"\r"))  # "\r" alone ends lines too
            if lines > limits.max_rows + 1:
                raise limits.too_many_rows()


def _without_blank_rows(raw: Raw, skipped: list[int]) -> Raw:
    """Drop empty lines (pyarrow keeps them as rows of empty strings) but keep line numbers."""
    if not raw.columns or pc.min(pc.binary_length(raw.columns[0])).as_py() != 0:
        return raw
    blank = np.logical_and.reduce([empty_mask(c) for c in raw.columns])
    if not blank.any():
        return raw
    lines = Lines(skipped + raw.lines(np.flatnonzero(blank)).tolist())
    keep = pa.array(~blank)
    return Raw(raw.names, [c.filter(keep) for c in raw.columns], lines)


def _report_bad_utf8(path: Path, gzipped: bool, report: Report, limits: ReadLimits) -> None:
    # Line by line, within the limits: the file may be anything.
    taken, number = 0, 0
    with _open(path, gzipped) as f:
        while limits.max_rows is None or number <= limits.max_rows:
            line = f.readline(limits.max_line_bytes + 2)
            number, taken = number + 1, taken + len(line)
            if not line or taken > limits.max_bytes:
                return
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = f"byte {exc.start + 1} (0x{line[exc.start]:02X})"
                report.add(
                    "not_utf8",
                    f"Line {number}: {byte} is not valid UTF-8; save the file as UTF-8.",
                    line=number,
                )
            if len(line) > limits.max_line_bytes + 1:
                return  # the rest of a line too long: the numbers would be wrong from here


def _read_parquet(path: Path, report: Report, limits: ReadLimits) -> Raw | None:
    try:
        table = _parquet_table(path, limits)
    except (pa.ArrowException, OSError) as exc:
        report.add("not_csv", f"The file starts like Parquet but could not be read ({exc}).")
        return None
    names = [str(name).strip() for name in table.column_names]
    columns = []
    for name, column in zip(names, table.columns, strict=True):
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if not (
            is_text(column)
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
    return Raw(names, columns)


def _parquet_table(path: Path, limits: ReadLimits) -> pa.Table:
    """The file's table, its text columns dictionary-encoded; raises LimitExceeded from the
    metadata's counts, then from the cells as they are decoded, batch by batch."""
    metadata = pq.read_metadata(path)
    schema = pq.read_schema(path)
    if len(schema) > limits.max_columns:
        raise limits.too_many_columns(len(schema))
    if limits.max_rows is not None and metadata.num_rows > limits.max_rows:
        raise limits.too_many_rows(metadata.num_rows)
    stored = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if stored > limits.max_bytes:
        raise limits.too_large("holds more than")
    # Text read as dictionaries: a long value repeated on every row is measured once.
    text = [f.name for f in schema if is_text_type(f.type)]
    budget, batches = Budget(limits), []
    with pq.ParquetFile(path, read_dictionary=text) as file:
        for batch in file.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
            budget.take(batch.columns, budget.rows, lambda row: row + 2)
            batches.append(batch)
        if not batches:
            return file.schema_arrow.empty_table()
    return pa.Table.from_batches(batches)


# --- cells -----------------------------------------------------------------------------


def is_text(column: pa.ChunkedArray) -> bool:
    return pa.types.is_string(column.type) or pa.types.is_large_string(column.type)


def empty_mask(column: pa.ChunkedArray) -> np.ndarray:
    if not is_text(column):
        return column.is_null().to_numpy()
    blank = pc.or_(pc.equal(pc.binary_length(column), 0), pc.utf8_is_space(column))
    return blank.fill_null(True).to_numpy()


def cell(column: pa.ChunkedArray, row: int) -> str:
    value = column[row].as_py()
    return "" if value is None else str(value)
