"""The suite's phases: one schedule (names, dates, quotas, kind) every task the suite made
follows (docs/suites.md, "Phases and quotas").

Contract: suite_phases_set is one durable transaction that checks the schedule as a whole
(names unique, listed in the order they start, none overlapping, each ending after it
starts, limits at least 1), stores it as the suite's SuitePhase rows, and mirrors it into
the phases of every owned task's competition: a phase of the same name is changed in
place (dates, quotas, kind; its own ground truth, board columns and released files stay),
a missing one is made, and one no longer listed is deleted, unless a submission or a
released file holds it: then nothing at all changes. Each write goes through the
competitions' phase services (competitions/services/organize.py's phase_write,
console.py's phase_remove): the same rules and the same lines in each competition's
organizer log. Gating a submission stays the competition phases' job (one rule place); an
attached task's competition keeps its own phases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction

from competitions import rules
from competitions.bundle_phases import BundlePhase
from competitions.errors import ApplicationError, InvalidState, full_clean_or_refuse
from competitions.models import Phase
from competitions.services.audit import Kind
from competitions.services.console import phase_delete_refusal, phase_remove
from competitions.services.organize import phase_write
from suites.models import Suite, SuitePhase, SuiteTask

KINDS = ("predictions", "container")


@dataclass(frozen=True)
class SchedulePhase:
    """One phase of a suite's schedule as written: a SuitePhase's fields, and what each
    owned task's phase of that name takes."""

    name: str
    start_at: datetime
    end_at: datetime | None = None
    daily_limit: int = 5
    total_limit: int | None = None
    late_submissions_scored: bool = False
    submission_kind: str = "predictions"
    allow_build_context: bool = False

    @classmethod
    def of(cls, phase: BundlePhase | SuitePhase | Phase) -> SchedulePhase:
        if isinstance(phase, BundlePhase):
            kind, context = phase.settings.kind, phase.settings.allow_build_context
        else:
            kind, context = phase.submission_kind, phase.allow_build_context
        return cls(
            name=phase.name,
            start_at=phase.start_at,
            end_at=phase.end_at,
            daily_limit=phase.daily_limit,
            total_limit=phase.total_limit,
            late_submissions_scored=phase.late_submissions_scored,
            submission_kind=kind,
            allow_build_context=context,
        )


def schedule_problems(phases: Sequence[SchedulePhase]) -> list[str]:
    """Every problem of the schedule, each a sentence naming its phase; [] when it keeps
    the phase rules (competitions/rules.py) as a whole."""
    problems: list[str] = []
    names = [p.name.strip() for p in phases]
    for i, phase in enumerate(phases):
        label = f"Phase {i + 1} “{phase.name}”"
        if not names[i] or len(names[i]) > 100:
            problems.append(f"Phase {i + 1}: a name of 1 to 100 characters.")
        elif names.index(names[i]) != i:
            problems.append(f"{label}: another phase has that name.")
        own = rules.phase_problems(
            start_at=phase.start_at,
            end_at=phase.end_at,
            daily_limit=phase.daily_limit,
            total_limit=phase.total_limit,
        )
        problems += [f"{label}: {message}" for message in dict.fromkeys(own.values())]
        if phase.submission_kind not in KINDS:
            problems.append(f"{label}: the kind is {' or '.join(KINDS)}.")
        if i and phase.start_at <= phases[i - 1].start_at:
            problems.append(f"{label}: list the phases in the order they start.")
        earlier = [(p.name, p.start_at, p.end_at) for p in phases[:i]]
        overlapped = rules.phase_overlapping(phase.start_at, phase.end_at, earlier)
        if overlapped is not None:
            problems.append(f"{label}: {rules.phase_overlap(overlapped)}")
    return problems


def suite_schedule_write(*, suite: Suite, phases: Sequence[SchedulePhase]) -> list[SuitePhase]:
    """Check the schedule and store it as the suite's phases (replacing them), inside the
    caller's transaction; the tasks' competitions are the caller's (suite_phases_set, or an
    import that made them with these phases)."""
    problems = schedule_problems(phases)
    if problems:
        raise ApplicationError(" ".join(problems), extra={"problems": problems})
    SuitePhase.objects.filter(suite=suite).delete()
    rows = []
    for position, phase in enumerate(phases):
        row = SuitePhase(suite=suite, position=position, **asdict(phase))
        row.name = row.name.strip()
        full_clean_or_refuse(row)
        rows.append(row)
    return SuitePhase.objects.bulk_create(rows)


@transaction.atomic(durable=True)
def suite_phases_set(
    *, suite: Suite, phases: Sequence[SchedulePhase], by: User | None
) -> list[SuitePhase]:
    """Make `phases` the suite's schedule and every owned task's (module docstring): all of
    it, or nothing with an ApplicationError naming every problem (an InvalidState naming
    each task and phase that can't be deleted)."""
    locked = Suite.objects.select_for_update().get(pk=suite.pk)
    rows = suite_schedule_write(suite=locked, phases=phases)
    schedule = [SchedulePhase.of(row) for row in rows]
    owned = locked.tasks.filter(owned=True).select_related("competition").order_by("position")
    stored = {task: _phases_locked(task) for task in owned}
    refusals = [
        f"The task {task.key}'s phase “{phase.name}” is not in the schedule and can't be "
        f"deleted: {refusal}"
        for task, phases_of_task in stored.items()
        for phase in _unlisted(phases_of_task, schedule)
        if (refusal := phase_delete_refusal(phase)) is not None
    ]
    if refusals:
        raise InvalidState(" ".join(refusals), extra={"problems": refusals})
    for task, phases_of_task in stored.items():
        _mirror(task.competition_id, phases_of_task, schedule, by)
    return rows


def _phases_locked(task: SuiteTask) -> list[Phase]:
    return list(
        Phase.objects.select_for_update()
        .filter(competition_id=task.competition_id)
        .order_by("start_at", "pk")
    )


def _unlisted(stored: list[Phase], schedule: list[SchedulePhase]) -> list[Phase]:
    """The phases the schedule drops: a name it does not list, or a name's second phase."""
    listed = {s.name for s in schedule}
    seen: set[str] = set()
    dropped = []
    for phase in stored:
        if phase.name in seen or phase.name not in listed:
            dropped.append(phase)
        seen.add(phase.name)
    return dropped


def _mirror(
    competition_id: int, stored: list[Phase], schedule: list[SchedulePhase], by: User | None
) -> None:
    """A competition's phases (`stored`, locked) made the schedule's, matched by name. The
    schedule was checked as a whole and the phases end up exactly its own, so no phase is
    checked against the others as stored (which the same change may be moving)."""
    dropped = _unlisted(stored, schedule)
    for gone in dropped:
        phase_remove(gone, by=by)
    kept = {p.name: p for p in stored if p not in dropped}
    for wanted in schedule:
        phase = kept.get(wanted.name)
        if phase is not None and SchedulePhase.of(phase) == wanted:
            continue
        phase_write(
            phase or Phase(competition_id=competition_id),
            by=by,
            kind=Kind.PHASE_CREATED if phase is None else Kind.PHASE_UPDATED,
            overlap_checked=True,
            **asdict(wanted),
        )
