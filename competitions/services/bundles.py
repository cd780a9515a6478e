"""Importing a competition from a bundle and exporting one to a bundle (docs/bundle.md).

Reading and checking the bundle lives in competitions/bundles.py; here the checked bundle
becomes rows and stored files, all or nothing.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import yaml
from django.contrib.auth.models import User
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models.fields.files import FieldFile

from competitions.bundles import (
    BUNDLE_YAML,
    Bundle,
    BundleInvalid,
    BundlePhase,
    bundle_open,
    bundle_read,
)
from competitions.models import Competition, Phase, Task, TaskFile
from competitions.services.references import references_enqueue
from competitions.zips import zip_written_atomically

__all__ = ["BundleInvalid", "bundle_export", "bundle_export_file", "bundle_import"]


def bundle_import(*, source: Path, organizer: User | None) -> Competition:
    """Create a competition from a bundle folder or zip; the importing user organizes it.

    Raises BundleInvalid listing every problem found; nothing is created then.
    """
    with tempfile.TemporaryDirectory(prefix="heldout-bundle-") as workdir:
        root = bundle_open(Path(source), workdir=Path(workdir))
        bundle = bundle_read(root)
        return competition_create_from_bundle(bundle=bundle, organizer=organizer)


def competition_create_from_bundle(*, bundle: Bundle, organizer: User | None) -> Competition:
    # Files are written before the transaction commits; on any failure they are removed
    # again, so a rejected import leaves neither rows nor orphan files behind.
    stored: list[FieldFile] = []
    try:
        with transaction.atomic():
            competition = Competition.objects.create(
                slug=bundle.slug,
                title=bundle.title,
                description=bundle.description,
                rules=bundle.rules,
                visibility=bundle.visibility,
                start_at=bundle.start_at,
                end_at=bundle.end_at,
                selection_limit=bundle.selection_limit,
                **competition_settings_fields(bundle),
            )
            task = _task_create(competition=competition, bundle=bundle, stored=stored)
            pins = phase_versions_create(task=task, bundle=bundle, stored=stored)
            for item in bundle.phases:
                phase = Phase(competition=competition, **phase_fields(item))
                phase.task_version = pins.get(item.name)
                phase.full_clean()
                phase.save()
            files_release_set(task=task, bundle=bundle)
            if organizer is not None:
                competition.organizers.add(organizer)
            # The board's reference rows (services/references.py), made by a worker.
            references_enqueue(competition_id=competition.pk, queue=task.queue)
    except IntegrityError:
        stored_files_delete(stored)
        # Only the slug is unique among what we insert; another import just took it.
        raise BundleInvalid(
            [f'slug: a competition named "{bundle.slug}" already exists.']
        ) from None
    except BaseException:
        stored_files_delete(stored)
        raise
    return competition


def _task_create(*, competition: Competition, bundle: Bundle, stored: list[FieldFile]) -> Task:
    spec = bundle.spec
    task = Task(
        competition=competition,
        task_type=spec.task_type,
        id_column=spec.id_column,
        target_columns=list(spec.target_columns),
        classes=list(spec.classes),
        primary_metric=spec.primary_metric,
        secondary_metrics=list(spec.secondary_metrics),
        **task_settings_fields(bundle),
    )
    program = bundle.task_settings.scorer_program
    if program is not None:
        task.scorer_program_sha256, _ = field_file_store(
            task.scorer_program, program, f"{competition.slug}/{scorer_name(program)}"
        )
        stored.append(task.scorer_program)
    # The ground truth goes to the private storage (the field's storage); it never gets a URL.
    name = f"{competition.slug}/{bundle.ground_truth.name}"
    task.ground_truth_sha256, task.ground_truth_size = field_file_store(
        task.ground_truth, bundle.ground_truth, name
    )
    stored.append(task.ground_truth)
    task.save()
    # Imported here: versions imports this module's file_sha256.
    from competitions.services.versions import task_version_ensure

    task_version_ensure(task=task)  # version 1: the hashes of what was imported
    for item in bundle.files:
        task_file = TaskFile(
            task=task, kind=item.kind, name=item.name, description=item.description
        )
        task_file.sha256, task_file.size = field_file_store(
            task_file.file, item.path, f"{competition.slug}/{item.name}"
        )
        stored.append(task_file.file)
        task_file.save()
    return task


def phase_versions_create(*, task: Task, bundle: Bundle, stored: list[FieldFile]) -> dict[str, int]:
    """The task version each phase scores under, by phase name: a version made from each
    phase's own ground truth (one per file), and the task's own, version 1, for the other
    phases, so a queued submission of one phase is never scored with another's labels.
    Empty when no phase has a ground truth of its own: every phase scores as before."""
    if not any(p.ground_truth for p in bundle.phases):
        return {}
    from competitions.services.versions import task_version_create

    made: dict[Path, int] = {}
    pins = {}
    for item in bundle.phases:
        if item.ground_truth is None:
            pins[item.name] = task.version
            continue
        key = item.ground_truth.resolve()
        if key not in made:
            with item.ground_truth.open("rb") as truth:
                version = task_version_create(
                    task=task,
                    ground_truth=File(truth, name=item.ground_truth.name),
                    note=f"phase {item.name}"[:300],
                )
            stored.append(version.ground_truth)
            made[key] = version.number
        pins[item.name] = made[key]
    return pins


def files_release_set(*, task: Task, bundle: Bundle) -> None:
    """Tie each file the bundle releases with a phase to that phase (read after the phases
    are written; competitions/bundles.py checked that the names are the bundle's)."""
    phases = {p.name: p for p in Phase.objects.filter(competition_id=task.competition_id)}
    for item in bundle.files:
        phase = phases[item.released_with] if item.released_with else None
        TaskFile.objects.filter(task=task, name=item.name).update(released_with=phase)


def competition_settings_fields(bundle: Bundle) -> dict[str, Any]:
    """The Competition fields a bundle's settings set (docs/bundle.md)."""
    return {
        "max_team_size": bundle.settings.max_team_size,
        "labels_published": bundle.settings.labels_published,
        "replicate_top_n": bundle.settings.replicate_top_n,
        "tie_rule": bundle.settings.tie_rule,
        "tie_break_metric": bundle.settings.tie_break_metric,
        "public_board": bundle.settings.public_board,
    }


def task_settings_fields(bundle: Bundle) -> dict[str, Any]:
    """The Task fields a bundle's settings set, apart from the scoring program's file."""
    ts = bundle.task_settings
    return {
        "queue": ts.queue,
        "limits": dict(ts.limits),
        "inference_limits": dict(ts.inference_limits),
        "scorer_image": ts.scorer_image,
        "scorer_logs_visible": ts.scorer_logs_visible,
        "scorer_program_public": ts.scorer_program_public,
    }


def phase_fields(phase: BundlePhase) -> dict[str, Any]:
    return {
        "name": phase.name,
        "start_at": phase.start_at,
        "end_at": phase.end_at,
        "daily_limit": phase.daily_limit,
        "total_limit": phase.total_limit,
        "late_submissions_scored": phase.late_submissions_scored,
        "submission_kind": phase.settings.kind,
        "allow_build_context": phase.settings.allow_build_context,
        "board_metrics": list(phase.settings.board_metrics),
    }


def scorer_name(program: Path) -> str:
    # The name the scorer upload gives it too (services/scorers.py).
    return f"score{program.suffix}"


def field_file_store(field_file: FieldFile, path: Path, name: str) -> tuple[str, int]:
    """Copy `path` into the field's storage; return its sha256 and size."""
    with open(path, "rb") as source:
        field_file.save(name, File(source), save=False)
    return file_sha256(path), path.stat().st_size


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def stored_files_delete(stored: list[FieldFile]) -> None:
    for field_file in stored:
        if field_file.name:
            field_file.storage.delete(field_file.name)


def bundle_export(*, competition: Competition, dest: Path) -> Path:
    """Write the competition as a bundle zip that bundle_import accepts; returns `dest`.

    The zip holds the ground truth, so it is for the competition's organizers only.
    Organizers, teams and submissions are not part of a bundle. The same competition
    always exports to the same bytes (fixed entry times and order), so an exported bundle
    kept in git changes only when the competition does.
    """
    task = competition.task
    files = list(task.files.select_related("released_with").order_by("id"))
    phases = list(competition.phases.order_by("start_at"))
    truth, truths = _ground_truths(task, phases)
    truth_name = "private/solution" + _suffix(truth)
    program_name = None
    if task.scorer_program:
        program_name = "scorer/" + scorer_name(Path(task.scorer_program.name or "score.py"))
    document = _bundle_document(competition, task, files, truth_name, program_name)
    document["phases"] = [_phase_entry(phase, truths.get(phase.pk)) for phase in phases]
    dest = Path(dest)
    with zip_written_atomically(dest, prefix=".export-") as zf:
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        zf.writestr(_entry(BUNDLE_YAML), text)
        zf.writestr(_entry("description.md"), competition.description)
        zf.writestr(_entry("rules.md"), competition.rules)
        _zip_copy(zf, truth, truth_name)
        for phase_truth in truths.values():
            _zip_copy(zf, phase_truth.file, phase_truth.name)
        if program_name is not None:
            _zip_copy(zf, task.scorer_program, program_name)
        for task_file in files:
            _zip_copy(zf, task_file.file, f"data/{task_file.name}")
    return dest


@dataclass(frozen=True)
class _PhaseTruth:
    file: FieldFile
    name: str  # in the zip


def _ground_truths(task: Task, phases: list[Phase]) -> tuple[FieldFile, dict[int, _PhaseTruth]]:
    """What the export writes as ground truths: the task's (the labels of the version the
    first phase pins, when it pins one: the task's own on import, whatever is ranked now),
    and by phase pk, the labels of each phase that pins another version."""
    if not any(p.task_version is not None for p in phases):
        return task.ground_truth, {}
    versions = {v.number: v.ground_truth for v in task.versions.all()}
    first = phases[0].task_version
    truth = versions[first] if first is not None else task.ground_truth
    own = {}
    for i, phase in enumerate(phases):
        number = phase.task_version
        if number is not None and number != first:
            name = f"private/phase-{i + 1}-solution{_suffix(versions[number])}"
            own[phase.pk] = _PhaseTruth(versions[number], name)
    return truth, own


def _suffix(field_file: FieldFile) -> str:
    return PurePosixPath(field_file.name or "").suffix or ".csv"


def _entry(arcname: str) -> zipfile.ZipInfo:
    """A zip entry with a fixed time: the zip's bytes depend on the competition only."""
    info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def bundle_export_file(*, competition: Competition) -> BinaryIO:
    """The bundle zip as an open file already removed from disk: the ground truth it holds
    is gone with the file once the caller (a download) closes it."""
    workdir = Path(tempfile.mkdtemp(prefix="heldout-export-"))
    try:
        path = bundle_export(competition=competition, dest=workdir / f"{competition.slug}.zip")
        return path.open("rb")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _zip_copy(zf: zipfile.ZipFile, field_file: FieldFile, arcname: str) -> None:
    with field_file.open("rb") as source, zf.open(_entry(arcname), "w") as out:
        shutil.copyfileobj(source, out, 1 << 20)


def _bundle_document(
    competition: Competition,
    task: Task,
    files: list[TaskFile],
    truth_name: str,
    program_name: str | None,
) -> dict[str, Any]:
    return {
        "slug": competition.slug,
        "title": competition.title,
        "description": "description.md",
        "rules": "rules.md",
        "visibility": competition.visibility,
        "start": _iso(competition.start_at),
        "end": _iso(competition.end_at),
        "selection_limit": competition.selection_limit,
        "max_team_size": competition.max_team_size,
        "labels_published": competition.labels_published,
        "replicate_top_n": competition.replicate_top_n,
        "tie_rule": competition.tie_rule,
        "tie_break_metric": competition.tie_break_metric,
        "public_board": competition.public_board,
        "task": {
            "type": task.task_type,
            "id_column": task.id_column,
            "target_columns": list(task.target_columns),
            "classes": [str(c) for c in task.classes],
            "primary_metric": task.primary_metric,
            "secondary_metrics": list(task.secondary_metrics),
            "ground_truth": truth_name,
            "files": [_file_entry(f) for f in files],
            "queue": task.queue,
            "limits": dict(task.limits),
            "inference_limits": dict(task.inference_limits),
            "scorer_image": task.scorer_image,
            "scorer_logs_visible": task.scorer_logs_visible,
            "scorer_program": program_name,
            "scorer_program_public": task.scorer_program_public,
        },
    }


# A file's `released_with` and a phase's `board_metrics` are written only when set, so a
# competition without them exports the bytes it did before these keys existed.
def _file_entry(f: TaskFile) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": f"data/{f.name}", "kind": f.kind}
    entry["description"] = f.description
    if f.released_with is not None:
        entry["released_with"] = f.released_with.name
    return entry


def _phase_entry(phase: Phase, truth: _PhaseTruth | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": phase.name,
        "start": _iso(phase.start_at),
        "end": _iso(phase.end_at),
        "daily_limit": phase.daily_limit,
        "total_limit": phase.total_limit,
        "late_submissions_scored": phase.late_submissions_scored,
        "kind": phase.submission_kind,
        "allow_build_context": phase.allow_build_context,
    }
    if phase.board_metrics:
        entry["board_metrics"] = list(phase.board_metrics)
    if truth is not None:
        entry["ground_truth"] = truth.name
    return entry


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
