"""The board's reference rows (services/references.py) as a board page reads them: from the
summary kept on its BoardStatistics row, which the page reads anyway (no query of their own).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from competitions.models import Task
from scoring.metrics import metric_get, normalized_score


@dataclass
class ReferenceRow:
    """A reference row of the board (services/references.py): never ranked, never a team.
    `position` is the number of team rows above it (those with a score at least as good)."""

    kind: str
    label: str
    score: float
    scores: dict[str, float | None]
    secondary: list[float | None]
    ci_low: float | None
    ci_high: float | None
    normalized_score: float | None
    reason: str
    position: int = 0
    is_reference = True


@dataclass(frozen=True)
class ReferenceMissing:
    """A reference the task's files did not allow (or that failed), and why."""

    label: str
    reason: str


def sort_key(score: float, higher_is_better: bool) -> float:
    return score if higher_is_better else -score


def reference_rows(
    stats: Mapping[str, Any] | None, task: Task, columns: list[str] | None = None
) -> tuple[list[ReferenceRow], list[ReferenceMissing]]:
    """The board's reference rows of the ranked version (BoardStatistics.references), best
    first, and those not made; `secondary` holds the `columns` shown besides the primary
    metric (None: the task's secondary metrics)."""
    shown = list(task.secondary_metrics) if columns is None else columns
    metric = metric_get(task.primary_metric)
    kept = [r for r in (stats or {}).get("references") or [] if r["task_version"] == task.version]
    scored = [r for r in kept if r["status"] == "scored" and r["score"] is not None]
    constant = next((r["score"] for r in scored if r["kind"] == "constant"), None)
    rows = [
        ReferenceRow(
            kind=r["kind"],
            label=r["label"],
            score=r["score"],
            scores=r["scores"],
            secondary=[r["scores"].get(m) for m in shown],
            ci_low=r["ci_low"],
            ci_high=r["ci_high"],
            normalized_score=normalized_score(metric, r["score"], constant),
            reason=r["reason"],
        )
        for r in scored
    ]
    rows.sort(key=lambda r: -sort_key(r.score, metric.higher_is_better))
    missing = [ReferenceMissing(r["label"], r["reason"]) for r in kept if r not in scored]
    return rows, missing
