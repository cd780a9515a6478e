"""What applying a bundle would change: the diff `bundle apply` shows before it writes.

A read only. Settings are compared as the bundle's yaml keys (`start`, `task.queue`,
`phases[Main].daily_limit`) with JSON values (times as ISO 8601 UTC); files by sha256.
The diff also lists what apply refuses (`refusals`: history it would rewrite) and notes
(a ground truth already held by a version that is not ranked). The data each phase scores
under is compared as a file too (`phases[NAME].ground_truth`; phase_truths_planned says
when the pins change). docs/bundle.md, "Applying a bundle", describes the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from competitions.bundles import Bundle, BundlePhase
from competitions.models import Competition, Phase, Submission, TaskVersion
from competitions.services.bundles import file_sha256

SPEC_KEYS = {"task.type", "task.id_column", "task.target_columns", "task.classes"}
SPEC_KEYS |= {"task.primary_metric", "task.secondary_metrics"}
FROZEN = "The competition is finalized: nothing in it can change until an organizer reopens it."


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class FileChange:
    path: str
    change: str  # added | changed | removed
    old_sha256: str
    new_sha256: str


@dataclass
class BundleDiff:
    slug: str
    created: bool
    changes: list[FieldChange] = field(default_factory=list)
    files: list[FileChange] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Set by apply: the task version holding the bundle's new ground truth (made, or to be
    # ranked), and the background job (OrganizerJob) that ranks a version, if any.
    version: int | None = None
    job: int | None = None
    applied: bool = False
    # By phase name, the sha256 of the ground truth each phase of the bundle will score
    # under (None: no pin); None when apply leaves the pins as they are.
    pins: dict[str, str | None] | None = None

    @property
    def empty(self) -> bool:
        return not self.changes and not self.files


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def bundle_diff(*, bundle: Bundle, competition: Competition | None) -> BundleDiff:
    """The changes from `competition` (None: it does not exist yet) to `bundle`."""
    diff = BundleDiff(slug=bundle.slug, created=competition is None)
    old = {} if competition is None else _competition_values(competition)
    _compare(diff, old, _bundle_values(bundle))
    _compare_files(diff, competition, bundle)
    _compare_phases(diff, competition, bundle)
    if competition is not None:
        _refusals(diff, competition)
        _compare_phase_truths(diff, competition, bundle)
    return diff


def _compare(diff: BundleDiff, old: dict[str, Any], new: dict[str, Any]) -> None:
    for key in new.keys() | old.keys():
        if old.get(key) != new.get(key):
            diff.changes.append(FieldChange(field=key, old=old.get(key), new=new.get(key)))
    diff.changes.sort(key=lambda c: c.field)


def _bundle_values(bundle: Bundle) -> dict[str, Any]:
    spec, cs, ts = bundle.spec, bundle.settings, bundle.task_settings
    values = {
        "title": bundle.title,
        "description": bundle.description,
        "rules": bundle.rules,
        "visibility": bundle.visibility,
        "start": iso(bundle.start_at),
        "end": iso(bundle.end_at),
        "selection_limit": bundle.selection_limit,
        "max_team_size": cs.max_team_size,
        "labels_published": cs.labels_published,
        "replicate_top_n": cs.replicate_top_n,
        "tie_rule": cs.tie_rule,
        "tie_break_metric": cs.tie_break_metric,
        "public_board": cs.public_board,
        "task.type": spec.task_type,
        "task.id_column": spec.id_column,
        "task.target_columns": list(spec.target_columns),
        "task.classes": list(spec.classes),
        "task.primary_metric": spec.primary_metric,
        "task.secondary_metrics": list(spec.secondary_metrics),
        "task.queue": ts.queue,
        "task.limits": dict(ts.limits),
        "task.inference_limits": dict(ts.inference_limits),
        "task.scorer_image": ts.scorer_image,
        "task.scorer_logs_visible": ts.scorer_logs_visible,
        "task.scorer_program_public": ts.scorer_program_public,
    }
    for item in bundle.files:
        values[f"task.files[{item.name}].kind"] = item.kind
        values[f"task.files[{item.name}].description"] = item.description
        values[f"task.files[{item.name}].released_with"] = item.released_with
    return values


def _competition_values(competition: Competition) -> dict[str, Any]:
    task = competition.task
    values = {
        "title": competition.title,
        "description": competition.description,
        "rules": competition.rules,
        "visibility": competition.visibility,
        "start": iso(competition.start_at),
        "end": iso(competition.end_at),
        "selection_limit": competition.selection_limit,
        "max_team_size": competition.max_team_size,
        "labels_published": competition.labels_published,
        "replicate_top_n": competition.replicate_top_n,
        "tie_rule": competition.tie_rule,
        "tie_break_metric": competition.tie_break_metric,
        "public_board": competition.public_board,
        "task.type": task.task_type,
        "task.id_column": task.id_column,
        "task.target_columns": list(task.target_columns),
        "task.classes": [str(c) for c in task.classes],
        "task.primary_metric": task.primary_metric,
        "task.secondary_metrics": list(task.secondary_metrics),
        "task.queue": task.queue,
        "task.limits": dict(task.limits),
        "task.inference_limits": dict(task.inference_limits),
        "task.scorer_image": task.scorer_image,
        "task.scorer_logs_visible": task.scorer_logs_visible,
        "task.scorer_program_public": task.scorer_program_public,
    }
    for item in task.files.select_related("released_with"):
        values[f"task.files[{item.name}].kind"] = item.kind
        values[f"task.files[{item.name}].description"] = item.description
        phase = item.released_with
        values[f"task.files[{item.name}].released_with"] = phase.name if phase else None
    return values


def phase_values(phase: BundlePhase | Phase) -> dict[str, Any]:
    if isinstance(phase, Phase):
        kind, build = phase.submission_kind, phase.allow_build_context
        columns = list(phase.board_metrics)
    else:
        kind, build = phase.settings.kind, phase.settings.allow_build_context
        columns = list(phase.settings.board_metrics)
    return {
        "start": iso(phase.start_at),
        "end": iso(phase.end_at),
        "daily_limit": phase.daily_limit,
        "total_limit": phase.total_limit,
        "late_submissions_scored": phase.late_submissions_scored,
        "kind": kind,
        "allow_build_context": build,
        "board_metrics": columns,
    }


def _prefixed(name: str, values: dict[str, Any]) -> dict[str, Any]:
    return {f"phases[{name}].{key}": value for key, value in values.items()}


def _compare_phases(diff: BundleDiff, competition: Competition | None, bundle: Bundle) -> None:
    current = {} if competition is None else {p.name: p for p in competition.phases.all()}
    wanted = {p.name: p for p in bundle.phases}
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, phase in current.items():
        before |= _prefixed(name, phase_values(phase))
    for name, item in wanted.items():
        after |= _prefixed(name, phase_values(item))
    _compare(diff, before, after)
    for name, phase in current.items():
        count = phase.submissions.count()
        if not count:
            continue
        if name not in wanted:
            diff.refusals.append(
                f'phases: "{name}" has {count} submission(s); a phase with submissions can\'t '
                "be removed or renamed."
            )
        elif phase.submission_kind != wanted[name].settings.kind:
            diff.refusals.append(
                f"phases[{name}].kind: the phase has {count} submission(s); its kind can't change."
            )


def _compare_files(diff: BundleDiff, competition: Competition | None, bundle: Bundle) -> None:
    old: dict[str, str] = {}
    if competition is not None:
        task = competition.task
        old["task.ground_truth"] = task.ground_truth_sha256
        if task.scorer_program:
            old["task.scorer_program"] = task.scorer_program_sha256
        old |= {f"task.files[{f.name}]": f.sha256 for f in task.files.all()}
    new = {"task.ground_truth": file_sha256(bundle.ground_truth)}
    program = bundle.task_settings.scorer_program
    if program is not None:
        new["task.scorer_program"] = file_sha256(program)
    new |= {f"task.files[{f.name}]": file_sha256(f.path) for f in bundle.files}
    for path in sorted(old.keys() | new.keys()):
        before, after = old.get(path, ""), new.get(path, "")
        if before == after:
            continue
        change = "added" if not before else "removed" if not after else "changed"
        diff.files.append(FileChange(path, change, before, after))
    if competition is not None:
        activate = bundle.task_settings.activate
        _ground_truth_held(diff, competition, new["task.ground_truth"], activate=activate)


def _ground_truth_held(
    diff: BundleDiff, competition: Competition, sha256: str, *, activate: bool
) -> None:
    """A ground truth a version already holds makes no new version (apply is repeatable)."""
    task = competition.task
    if sha256 == task.ground_truth_sha256:
        return
    held = (
        TaskVersion.objects.filter(task=task, ground_truth_sha256=sha256)
        .order_by("-number")
        .first()
    )
    if held is None:
        diff.notes.append(
            "task.ground_truth: a new ground truth makes a new task version, "
            + (
                "ranked at once and every submission rescored (task.activate)."
                if activate
                else "not ranked until an organizer activates it (or task.activate: true)."
            )
        )
        return
    diff.files = [f for f in diff.files if f.path != "task.ground_truth"]
    if activate:
        diff.changes.append(FieldChange("task.version", task.version, held.number))
        return
    diff.notes.append(
        f"task.ground_truth: version {held.number} holds this ground truth; version "
        f"{task.version} is ranked (`task.activate: true` ranks version {held.number})."
    )


def _refusals(diff: BundleDiff, competition: Competition) -> None:
    if competition.is_finalized and not diff.empty:
        diff.refusals.insert(0, FROZEN)
    spec_changes = [c.field for c in diff.changes if c.field in SPEC_KEYS]
    if spec_changes and Submission.objects.filter(competition=competition).exists():
        diff.refusals.append(
            f"{', '.join(spec_changes)}: how the task is scored can't change once there are "
            "submissions (their scores would change meaning); start a new competition."
        )


def phase_truths_planned(
    *, competition: Competition, bundle: Bundle
) -> dict[str, str | None] | None:
    """What each phase of the bundle will score under once it is applied, by name: the
    sha256 of its ground truth, None for no pin (the ranked version); None when the pins
    stay as they are.

    As on import (services/bundles.py, phase_versions_create): when a phase of the bundle
    has a ground truth of its own, it scores under that and every other phase under the
    bundle's task.ground_truth; when none has, no phase pins a version. The pins stay as
    they are when the bundle describes the phases' data as the competition's export would
    (services/bundles.py, _ground_truths), so applying its own export changes nothing
    however its pins were set (on import, on the organizer pages or in the admin)."""
    task_truth, own = wanted = _bundle_truths(bundle)
    if _export_truths(competition) == wanted:
        return None
    if not own:
        return {p.name: None for p in bundle.phases}
    return {p.name: own.get(p.name, task_truth) for p in bundle.phases}


def _export_truths(competition: Competition) -> tuple[str, dict[str, str]]:
    """(the task's ground truth, each phase's own) as the export writes them, by sha256."""
    task = competition.task
    phases = list(competition.phases.order_by("start_at"))
    if all(p.task_version is None for p in phases):
        return task.ground_truth_sha256, {}
    held = _version_truths(competition)
    first = phases[0].task_version
    truth = held.get(first, "") if first is not None else task.ground_truth_sha256
    own = {
        p.name: held.get(p.task_version, "")
        for p in phases
        if p.task_version is not None and p.task_version != first
    }
    return truth, own


def _bundle_truths(bundle: Bundle) -> tuple[str, dict[str, str]]:
    own = {p.name: file_sha256(p.ground_truth) for p in bundle.phases if p.ground_truth}
    return file_sha256(bundle.ground_truth), own


def _version_truths(competition: Competition) -> dict[int, str]:
    return dict(
        TaskVersion.objects.filter(task__competition=competition).values_list(
            "number", "ground_truth_sha256"
        )
    )


def _compare_phase_truths(diff: BundleDiff, competition: Competition, bundle: Bundle) -> None:
    """A phase whose data changes is a file change `phases[NAME].ground_truth` (the data
    it scores under: its own ground truth, or the task's when another phase has one; ""
    for none, the ranked version's), with a note when it has submissions: they keep their
    scores under the version they were scored under."""
    diff.pins = phase_truths_planned(competition=competition, bundle=bundle)
    if diff.pins is None:
        return
    held = _version_truths(competition)
    current = {p.name: p for p in competition.phases.all()}
    for name, wanted in diff.pins.items():
        phase = current.get(name)
        pinned = phase.task_version if phase is not None else None
        before = held.get(pinned, "") if pinned is not None else ""
        after = wanted or ""
        if before == after:
            continue
        change = "added" if not before else "removed" if not after else "changed"
        diff.files.append(FileChange(f"phases[{name}].ground_truth", change, before, after))
        count = phase.submissions.count() if phase is not None else 0
        if count:
            scored = f"version {pinned}" if pinned is not None else "the version then ranked"
            diff.notes.append(
                f"phases[{name}].ground_truth: the phase scores under other data from now "
                f"on; its {count} submission(s) keep their scores under {scored} (rescore "
                "them to rank them under the new data)."
            )
