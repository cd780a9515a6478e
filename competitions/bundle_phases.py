"""The phases part of a bundle: competition.yaml's `phases:` (docs/bundle.md), read and
checked by competitions/bundles.py, and by suites/bundles.py for a suite's schedule
(suite.yaml's `phases:`, the same keys minus the per-task ones: a phase's own ground truth
and its board's columns). Problems are recorded on the reader as every other key's are.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from competitions import rules
from competitions.bundle_settings import PHASE_SETTING_KEYS, PhaseSettings, read_phase_settings

if TYPE_CHECKING:
    from competitions.bundles import BundleFile, _Reader

PHASE_KEYS = {"name", "start", "end", "daily_limit", "total_limit", "late_submissions_scored"}
PHASE_KEYS |= {"ground_truth"} | PHASE_SETTING_KEYS
# A phase's keys that belong to one task (its labels, its board's columns): not a schedule's.
TASK_PHASE_KEYS = {"ground_truth", "board_metrics"}
SCHEDULE_PHASE_KEYS = PHASE_KEYS - TASK_PHASE_KEYS
COMPETITION_START_HINT = " (or give the competition a start)"


@dataclass(frozen=True)
class BundlePhase:
    name: str
    start_at: datetime
    end_at: datetime | None
    daily_limit: int
    total_limit: int | None
    late_submissions_scored: bool
    settings: PhaseSettings = field(default_factory=PhaseSettings)
    # The phase's own hidden labels (a task version it scores under); None: the task's.
    ground_truth: Path | None = None


def read_phases(
    reader: _Reader,
    value: Any,
    *,
    default_start: datetime | None,
    keys: Collection[str] = frozenset(PHASE_KEYS),
    start_hint: str = COMPETITION_START_HINT,
) -> list[BundlePhase]:
    """The phases listed under `phases`, each problem recorded; `keys` are those a phase
    may have (a suite's schedule has no per-task ones)."""
    if not isinstance(value, list) or not value:
        reader.problem("phases", "must list at least one phase.")
        return []
    phases = []
    for i, item in enumerate(value):
        p = f"phases[{i}]."
        data = reader.mapping(item, p.rstrip("."), set(keys))
        start_at = reader.when(data, "start", p) or default_start
        end_at = reader.when(data, "end", p)
        phase = BundlePhase(
            name=reader.text(data, "name", p, max_length=100),
            start_at=start_at or datetime.min.replace(tzinfo=UTC),
            end_at=end_at,
            daily_limit=reader.integer(data, "daily_limit", p, default=5, minimum=1) or 1,
            total_limit=reader.integer(
                data, "total_limit", p, default=None, minimum=1, nullable=True
            ),
            late_submissions_scored=reader.boolean(
                data, "late_submissions_scored", p, default=False
            ),
            settings=read_phase_settings(reader, data, p),
            ground_truth=(
                reader.path(data["ground_truth"], p + "ground_truth")
                if data.get("ground_truth") is not None and "ground_truth" in keys
                else None
            ),
        )
        if start_at is None:
            reader.problem(p + "start", f"is required{start_hint}.")
        elif end_at is not None and end_at <= start_at:
            reader.problem(p + "end", "must be after the phase's start.")
        phases.append(phase)
    _check_phase_order(reader, phases)
    return phases


def check_phase_truths(reader: _Reader, phases: list[BundlePhase], files: list[BundleFile]) -> None:
    """A phase's ground truth is hidden like the task's: no public file may be it."""
    published = {f.path.resolve() for f in files}
    for i, phase in enumerate(phases):
        if phase.ground_truth is not None and phase.ground_truth.resolve() in published:
            reader.problem(
                f"phases[{i}].ground_truth", "is a public file; a ground truth is never published."
            )


def _check_phase_order(reader: _Reader, phases: list[BundlePhase]) -> None:
    names = [p.name for p in phases]
    for name in sorted({n for n in names if n and names.count(n) > 1}):
        reader.problem("phases", f'two phases are named "{name}".')
    ordered = sorted(phases, key=lambda p: p.start_at)
    # The same overlap rule as Phase.clean and the admin's inline (competitions/rules.py).
    for i, later in enumerate(ordered):
        earlier = [(p.name, p.start_at, p.end_at) for p in ordered[:i]]
        overlapped = rules.phase_overlapping(later.start_at, later.end_at, earlier)
        if overlapped is not None:
            reader.problem(
                "phases", f'"{overlapped}" overlaps "{later.name}"; phases must not overlap.'
            )
