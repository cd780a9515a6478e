"""How the CLI prints: data on stdout, messages and progress on stderr."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from heldout.models import Submission

out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, markup=False)


def table(*columns: str) -> Table:
    result = Table(*columns, box=None, pad_edge=False, show_edge=False)
    for column in result.columns:
        column.overflow = "fold"
    return result


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def scores_text(scores: dict[str, dict[str, float | None]]) -> str:
    return "; ".join(
        f"{split}: " + ", ".join(f"{metric}={value}" for metric, value in metrics.items())
        for split, metrics in scores.items()
    )


def print_submission(submission: Submission) -> None:
    """The submission's status and, when scored, its scores; when invalid, its problems
    with their line numbers."""
    out.print(f"Submission {submission.id}: {submission.status}")
    if submission.file_name:
        out.print(f"  file: {submission.file_name} (sha256 {submission.sha256})")
    if submission.status == "scored":
        for split, metrics in submission.scores.items():
            for metric, value in metrics.items():
                out.print(f"  {split} {metric}: {value}")
    if submission.failure:
        out.print(f"  failure: {submission.failure}")
    if submission.error_message:
        out.print(f"  {submission.error_message}")
    for problem in submission.problems:
        where = f"line {problem.line}" if problem.line is not None else "file"
        column = f" [{problem.column}]" if problem.column else ""
        out.print(f"  {where}{column}: {problem.code}: {problem.message}")
    hidden = submission.total_problems - len(submission.problems)
    if hidden > 0:
        out.print(f"  ... and {hidden} more problems")


@contextmanager
def transfer_bar(description: str) -> Iterator[Progress]:
    """A progress bar on stderr (drawn only on a terminal)."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
    with bar:
        yield bar
