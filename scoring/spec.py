"""What a task's files look like and how a submission is scored.

A TaskSpec is plain data: it travels as JSON into the scorer container, so it only holds
strings and tuples of strings and checks its own consistency when built.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

TaskType = Literal["binary", "multiclass", "regression", "probabilities"]
TASK_TYPES: tuple[str, ...] = get_args(TaskType)

# Read limits (docs/site.md, "Submission files").
MAX_FILE_BYTES = 2 << 30  # decompressed, whatever the test set
MAX_LINE_BYTES = 1 << 20  # for files read without a test set (the ground truth)
MAX_COLUMNS = 1000  # likewise
EXTRA_ROWS, EXTRA_ROWS_FRACTION = 1000, 0.01  # rows beyond the test set's: the larger
EXTRA_COLUMNS = 5  # columns beyond the expected ones (an index, a stray feature...)
LINE_BASE_BYTES, CELL_BYTES = 256, 64  # the longest line: this, plus this per column
# What a line takes on average, this plus this per expected column: about 3x what a
# valid file needs, so that a file of rows all at the longest is refused for its size.
ROW_BASE_BYTES, ROW_CELL_BYTES = 16, 32


def canonical_label(value: str) -> str:
    """The form used to compare class labels: "1", "1.0" and " 1 " all become "1".

    Numeric-looking labels are compared by value (so "007" equals "7"); any other label is
    compared exactly, after trimming surrounding whitespace (case matters).
    """
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        return text
    if number != number or number in (float("inf"), float("-inf")):
        return text
    if number.is_integer():
        return str(int(number))
    return repr(number)


@dataclass(frozen=True)
class TaskSpec:
    id_column: str
    target_columns: tuple[str, ...]
    task_type: TaskType
    primary_metric: str
    secondary_metrics: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    usage_column: str = "Usage"

    def __post_init__(self) -> None:
        # Tuples are required for hashing and JSON round trips; accept lists from callers.
        for name in ("target_columns", "secondary_metrics", "classes"):
            object.__setattr__(self, name, tuple(str(v) for v in getattr(self, name)))
        if self.task_type == "binary" and not self.classes:
            object.__setattr__(self, "classes", ("0", "1"))
        if self.task_type == "probabilities" and not self.classes:
            object.__setattr__(self, "classes", self.target_columns)
        problems = _spec_problems(self)
        if problems:
            raise ValueError("Invalid task spec: " + " ".join(problems))

    @property
    def metrics(self) -> tuple[str, ...]:
        """The primary metric first, then the secondary ones."""
        return (self.primary_metric, *self.secondary_metrics)

    @property
    def columns(self) -> tuple[str, ...]:
        """The header of a submission: the id column, then the target columns."""
        return (self.id_column, *self.target_columns)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("target_columns", "secondary_metrics", "classes"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown task spec keys: {', '.join(unknown)}.")
        missing = sorted(
            name
            for name in ("id_column", "target_columns", "task_type", "primary_metric")
            if name not in data
        )
        if missing:
            raise ValueError(f"Missing task spec keys: {', '.join(missing)}.")
        return cls(**data)


def _spec_problems(spec: TaskSpec) -> list[str]:
    # Imported here because metrics.py refers back to TaskSpec for its signatures.
    from scoring.metrics import METRICS

    problems = []
    if spec.task_type not in TASK_TYPES:
        problems.append(
            f'Unknown task type "{spec.task_type}"; use one of {", ".join(TASK_TYPES)}.'
        )
        return problems
    columns = [spec.id_column, *spec.target_columns]
    if not spec.id_column or not spec.target_columns or "" in spec.target_columns:
        problems.append("The id column and at least one target column must be named.")
    if len(set(columns)) != len(columns):
        problems.append("Column names must be distinct.")
    if spec.usage_column in columns:
        problems.append(f'The usage column "{spec.usage_column}" clashes with a submission column.')
    if spec.task_type in ("binary", "multiclass") and len(spec.target_columns) != 1:
        problems.append(f"A {spec.task_type} task has exactly one target column.")
    problems.extend(_class_problems(spec))
    for name in spec.metrics:
        metric = METRICS.get(name)
        if metric is None:
            problems.append(f'Unknown metric "{name}"; known: {", ".join(sorted(METRICS))}.')
        elif spec.task_type not in metric.task_types:
            problems.append(f'Metric "{name}" does not apply to {spec.task_type} tasks.')
    if len(set(spec.metrics)) != len(spec.metrics):
        problems.append("A metric is listed twice.")
    return problems


def _class_problems(spec: TaskSpec) -> list[str]:
    classes = spec.classes
    if spec.task_type == "binary" and len(classes) != 2:
        return ["A binary task has exactly two classes (the positive class last)."]
    if spec.task_type == "multiclass" and len(classes) < 2:
        return ["A multiclass task needs at least two classes."]
    if spec.task_type == "probabilities" and classes != spec.target_columns:
        return ["For a probabilities task the classes are the target columns."]
    if spec.task_type == "regression" and classes:
        return ["A regression task has no classes."]
    if len({canonical_label(c) for c in classes}) != len(classes):
        return ['Two classes are the same label (numeric labels compare by value: "1" = "1.0").']
    return []


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    line: int | None = None
    column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReadLimits:
    """The most a reader takes from one file; past any of them it stops and reports it.

    max_bytes bounds a plain file's size, and what a gzipped or Parquet file holds once
    read: its rows as text (cells, separators and line ends; decoded cells for Parquet).
    test_rows, when known, only serves the messages.
    """

    max_bytes: int = MAX_FILE_BYTES
    max_rows: int | None = None
    max_columns: int = MAX_COLUMNS
    max_line_bytes: int = MAX_LINE_BYTES
    test_rows: int | None = None

    @classmethod
    def for_predictions(cls, spec: TaskSpec, *, test_rows: int, id_bytes: int = 0) -> ReadLimits:
        """Limits for a submission to a test set of test_rows ids, the longest id_bytes
        long (UTF-8): every limit is a margin above what a valid file needs."""
        max_rows = test_rows + max(EXTRA_ROWS, math.ceil(test_rows * EXTRA_ROWS_FRACTION))
        max_columns = len(spec.columns) + EXTRA_COLUMNS
        # Ids and class labels may be written quoted, with quotes doubled: twice as long.
        label_bytes = 2 * max((len(c.encode()) for c in spec.classes), default=0)
        max_line = LINE_BASE_BYTES + max_columns * (CELL_BYTES + label_bytes) + 2 * id_bytes
        row_bytes = ROW_BASE_BYTES + 2 * id_bytes
        row_bytes += len(spec.columns) * (ROW_CELL_BYTES + label_bytes)
        return cls(
            # The header may be as long as any line.
            max_bytes=min(MAX_FILE_BYTES, max_line + max_rows * row_bytes),
            max_rows=max_rows,
            max_columns=max_columns,
            max_line_bytes=max_line,
            test_rows=test_rows,
        )

    @classmethod
    def for_truth(cls, spec: TaskSpec) -> ReadLimits:
        """Limits for a ground-truth file: the absolute caps, and a few columns beyond the
        expected ones and the usage column."""
        return cls(max_columns=len(spec.columns) + 1 + EXTRA_COLUMNS)

    @property
    def holder(self) -> str:
        """What the file is, for messages: "a submission for 10,000 test rows"."""
        if self.test_rows is None:
            return "a file"
        return f"a submission for {self.test_rows:,} test rows"

    def too_many_rows(self, found: int | None = None) -> LimitExceeded:
        """found: the exact count when known (Parquet), else it is only "more than" the limit."""
        limit = self.max_rows or 0
        if found is None:
            message = f"The file has more than {limit:,} rows"
        else:
            message = f"The file has {found:,} rows, more than {limit:,}"
        if self.test_rows is not None:
            message += f"; the test set has {self.test_rows:,}."
        else:
            message += f", the most {self.holder} may have."
        return LimitExceeded("too_many_rows", message)

    def too_long(self, line: int | None, after: int = 0) -> LimitExceeded:
        which = f"Line {line:,}" if line is not None else f"A line after line {after:,}"
        message = (
            f"{which} is longer than {self.max_line_bytes:,} bytes, the longest a line in "
            f"{self.holder} may be."
        )
        return LimitExceeded("line_too_long", message, line=line)

    def too_many_columns(self, found: int) -> LimitExceeded:
        message = (
            f"Line 1: the header has {found:,} columns, more than the {self.max_columns:,} "
            f"{self.holder} may have."
        )
        return LimitExceeded("too_many_columns", message, line=1)

    def too_large(self, what: str) -> LimitExceeded:
        message = f"The file {what} {size_text(self.max_bytes)}, the most {self.holder} may hold."
        return LimitExceeded("too_large", message)


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
