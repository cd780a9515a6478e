"""CSV that a spreadsheet opens as data: every CSV Heldout writes goes through `csv_writer`.

A text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to
Excel, LibreOffice and Google Sheets (a team named `=HYPERLINK(...)` would run in the
organizer's spreadsheet); OWASP's rule is to prefix such a cell with a single quote, which
the spreadsheet shows as text. Only text cells: numbers stay numbers (a score of -0.5 is
written -0.5), while a team *named* "-0.5" is text and gets its quote.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """The value to write: a text cell that a spreadsheet would evaluate, quoted."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer whose rows pass through `csv_cell`."""

    def __init__(self, stream: Any, **options: Any):
        self._writer = csv.writer(stream, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(stream: Any, **options: Any) -> SafeWriter:
    return SafeWriter(stream, **options)
