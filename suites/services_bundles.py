"""Importing a suite from its bundle, exporting one back, and the suite as one archive
(docs/suites.md, "The suite bundle").

Contract: suite_import makes the suite and every task's competition (each by
competitions' competition_create_from_bundle, so each asks a worker for its board's
reference rows once committed) in one durable transaction: all of them or none, and a
refused import leaves no stored file behind. suite_export writes the layout suite_import
reads, and always the same bytes for the same suite: importing an export and exporting
again gives identical files, and suite_archive_write an identical .zip or .tar.gz. The
export holds every task's ground truth: it is for the suite's organizers only.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models.fields.files import FieldFile

from competitions.errors import BundleInvalid
from competitions.models import Competition
from competitions.services.bundles import (
    bundle_export,
    competition_create_from_bundle,
    stored_files_delete,
)
from competitions.zips import zip_written_atomically
from suites.bundles import SUITE_YAML, SuiteBundle, suite_bundle_open, suite_bundle_read
from suites.models import Suite, SuitePhase
from suites.services import suite_create, suite_task_add
from suites.services_phases import SchedulePhase, suite_schedule_write

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")
# 1980-01-01, the earliest time a zip can hold: the archives' bytes depend on the suite only.
FIXED_TIME = 315532800


def suite_import(*, source: Path, organizer: User | None) -> Suite:
    """Create a suite and its tasks from a suite bundle (folder, zip or tar.gz); the
    importing user organizes it. Raises BundleInvalid with every problem; nothing is made
    then."""
    with tempfile.TemporaryDirectory(prefix="heldout-suite-") as workdir:
        root = suite_bundle_open(Path(source), workdir=Path(workdir) / "suite")
        bundle = suite_bundle_read(root, workdir=Path(workdir) / "tasks")
        return suite_create_from_bundle(bundle=bundle, organizer=organizer)


def suite_create_from_bundle(*, bundle: SuiteBundle, organizer: User | None) -> Suite:
    stored: list[FieldFile] = []
    try:
        with transaction.atomic(durable=True):
            suite = suite_create(
                slug=bundle.slug,
                title=bundle.title,
                organizer=organizer,
                description=bundle.description,
                rules=bundle.rules,
                visibility=bundle.visibility,
                split_seed=bundle.split_seed,
            )
            for task in bundle.tasks:
                competition = competition_create_from_bundle(
                    bundle=task.bundle, organizer=organizer
                )
                stored += _stored_by(competition)
                suite_task_add(suite=suite, competition=competition, key=task.key, owned=True)
            if bundle.phases is not None:
                # The tasks were made with these phases (suites/bundles.py): only the
                # suite's rows are written.
                schedule = [SchedulePhase.of(p) for p in bundle.phases]
                suite_schedule_write(suite=suite, phases=schedule)
    except IntegrityError:
        stored_files_delete(stored)
        # The slugs were free when read; another import took one since.
        raise BundleInvalid([f'slug: a suite named "{bundle.slug}" already exists.']) from None
    except BaseException:
        # The rows roll back; the files the earlier tasks stored go too
        # (competition_create_from_bundle removes only those of the one that failed).
        stored_files_delete(stored)
        raise
    return suite


def _phase_entry(phase: SuitePhase) -> dict[str, Any]:
    """A phase of the schedule as suite.yaml holds it (a competition bundle's phase keys,
    without the per-task ones)."""
    return {
        "name": phase.name,
        "start": _iso(phase.start_at),
        "end": _iso(phase.end_at),
        "daily_limit": phase.daily_limit,
        "total_limit": phase.total_limit,
        "late_submissions_scored": phase.late_submissions_scored,
        "kind": phase.submission_kind,
        "allow_build_context": phase.allow_build_context,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _stored_by(competition: Competition) -> list[FieldFile]:
    task = competition.task
    return [task.ground_truth, task.scorer_program, *(f.file for f in task.files.all())]


def suite_export(*, suite: Suite, dest: Path) -> Path:
    """Write the suite as a bundle folder at `dest` (which must not exist); returns dest.

    suite.yaml, description.md, rules.md, and tasks/<key>/ holding each task's competition
    bundle as competitions' bundle_export writes it, unpacked. The folder appears whole or
    not at all."""
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} exists; export into a new folder.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".suite-export-", dir=dest.parent))
    try:
        _export_into(suite, tmp)
        _fix_times(tmp)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _export_into(suite: Suite, root: Path) -> None:
    tasks = list(suite.tasks.select_related("competition__task").order_by("position"))
    document: dict[str, Any] = {
        "slug": suite.slug,
        "title": suite.title,
        "description": "description.md",
        "rules": "rules.md",
        "visibility": suite.visibility,
        "split_seed": suite.split_seed,
    }
    phases = [_phase_entry(p) for p in suite.phases.order_by("position")]
    if phases:
        document["phases"] = phases
    document["tasks"] = [{"key": t.key, "folder": f"tasks/{t.key}"} for t in tasks]
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    (root / SUITE_YAML).write_text(text, encoding="utf-8")
    (root / "description.md").write_text(suite.description, encoding="utf-8")
    (root / "rules.md").write_text(suite.rules, encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="heldout-suite-task-") as work:
        for task in tasks:
            archive = bundle_export(
                competition=task.competition, dest=Path(work) / f"{task.key}.zip"
            )
            folder = root / "tasks" / task.key
            folder.mkdir(parents=True)
            # Our own export: unpacked whole (an upload's size limit is not for it).
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(folder)


def _fix_times(root: Path) -> None:
    """Every file and folder gets the same time and permissions, so copies compare equal
    whatever tool reads them."""
    for path in sorted(root.rglob("*"), reverse=True):
        path.chmod(0o755 if path.is_dir() else 0o644)
        os.utime(path, (FIXED_TIME, FIXED_TIME))
    root.chmod(0o755)
    os.utime(root, (FIXED_TIME, FIXED_TIME))


def suite_archive_write(*, suite: Suite, dest: Path) -> Path:
    """The suite's bundle as one archive, .zip or .tar.gz by `dest`'s name; the same bytes
    for the same suite (sorted entries, fixed times and owners)."""
    dest = Path(dest)
    if not dest.name.endswith(ARCHIVE_SUFFIXES):
        raise ValueError(f"{dest.name}: name the archive .zip, .tar.gz or .tgz.")
    with tempfile.TemporaryDirectory(prefix="heldout-suite-archive-") as work:
        folder = suite_export(suite=suite, dest=Path(work) / suite.slug)
        if dest.name.endswith(".zip"):
            return _zip_folder(folder, dest)
        return _tar_folder(folder, dest)


def _files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.as_posix())


def _zip_folder(folder: Path, dest: Path) -> Path:
    with zip_written_atomically(dest, prefix=".suite-") as zf:
        for path in _files(folder):
            info = zipfile.ZipInfo(
                path.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0)
            )
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with path.open("rb") as source, zf.open(info, "w") as out:
                shutil.copyfileobj(source, out, 1 << 20)
    return dest


def _tar_folder(folder: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".suite-", suffix=".tar.gz", dir=dest.parent)
    os.close(fd)
    try:
        # gzip's header holds a time and a file name: fixed (0, none) here.
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tf,
        ):
            for path in _files(folder):
                info = tarfile.TarInfo(path.relative_to(folder).as_posix())
                info.size = path.stat().st_size
                info.mtime, info.mode = FIXED_TIME, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with path.open("rb") as source:
                    tf.addfile(info, source)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
