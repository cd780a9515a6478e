"""Counting what a reader takes from a file against its spec.ReadLimits.

Pure (numpy and pyarrow only): scoring.tables feeds a Budget each batch it reads (and
each line the CSV parser leaves out), which raises LimitExceeded past a limit; its code and
one-sentence message go into the validation report as they are.

Bytes are counted on what the parser produced (cells, separators and line ends), not by
wrapping the file in a Python object: pyarrow's readahead reads from another thread,
and a Python file still being read when the interpreter exits aborts it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

from scoring.spec import ReadLimits

_NUMBER_BYTES = 24  # what a non-text Parquet cell counts for, as if written as text


class LimitExceeded(Exception):
    """A file passed one of its ReadLimits; the message says which, for the report."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.line = code, message, line


def size_text(n: int) -> str:
    """A size in decimal units, rounded down: 48,123,456 -> "48.1 MB"."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= scale:
            return f"{math.floor(n / scale * 10) / 10:,g} {unit}"
    return f"{n:,} bytes"


def too_many_rows(limits: ReadLimits, found: int | None = None) -> LimitExceeded:
    """found: the exact count when known (Parquet), else it is only "more than" the limit."""
    limit = limits.max_rows or 0
    if found is None:
        message = f"The file has more than {limit:,} rows"
    else:
        message = f"The file has {found:,} rows, more than {limit:,}"
    if limits.test_rows is not None:
        message += f"; the test set has {limits.test_rows:,}."
    else:
        message += f", the most {limits.holder} may have."
    return LimitExceeded("too_many_rows", message)


def too_long(limits: ReadLimits, line: int | None, after: int = 0) -> LimitExceeded:
    which = f"Line {line:,}" if line is not None else f"A line after line {after:,}"
    message = (
        f"{which} is longer than {limits.max_line_bytes:,} bytes, the longest a line in "
        f"{limits.holder} may be."
    )
    return LimitExceeded("line_too_long", message, line=line)


def too_many_columns(limits: ReadLimits, found: int) -> LimitExceeded:
    message = (
        f"Line 1: the header has {found:,} columns, more than the {limits.max_columns:,} "
        f"{limits.holder} may have."
    )
    return LimitExceeded("too_many_columns", message, line=1)


def too_large(limits: ReadLimits, what: str) -> LimitExceeded:
    message = f"The file {what} {size_text(limits.max_bytes)}, the most {limits.holder} may hold."
    return LimitExceeded("too_large", message)


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
        self.count_rows(1)
        if len(text) > self.limits.max_line_bytes:
            raise too_long(self.limits, line)
        self.text_bytes += len(text) + 1
        self.check_text_bytes()

    def count_rows(self, n: int) -> None:
        self.rows += n
        if self.limits.max_rows is not None and self.rows > self.limits.max_rows:
            raise too_many_rows(self.limits)

    def check_rows(
        self, columns: Sequence[pa.Array], first_row: int, line_of: Callable[[int], int]
    ) -> None:
        """Line lengths (cells and commas) of a batch whose first row is first_row."""
        widths = _row_widths(columns)
        longer = np.flatnonzero(widths > self.limits.max_line_bytes)
        if len(longer):
            raise too_long(self.limits, line_of(first_row + int(longer[0])))
        self.text_bytes += int(widths.sum()) + len(widths)

    def check_text_bytes(self) -> None:
        if self.text_bytes > self.limits.max_bytes:
            raise too_large(self.limits, self._too_large_as)


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


def longest_text(column: pa.Array | pa.ChunkedArray) -> int:
    """The longest cell of a text column, in bytes."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    return max((int(_text_lengths(chunk).max(initial=0)) for chunk in chunks), default=0)


def _text_lengths(array: pa.Array) -> np.ndarray:
    """Each cell's length in bytes, from the offsets buffer: numpy only, since small Arrow
    allocations between the kept batches' buffers would hold on to memory."""
    if len(array) == 0:
        return np.zeros(0, dtype=np.int64)
    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64 if large else np.int32)
    return np.diff(offsets[array.offset : array.offset + len(array) + 1])


def is_text_type(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    )
