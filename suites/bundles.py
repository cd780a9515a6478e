"""Reading a suite bundle: a folder, zip or tar.gz holding suite.yaml and one competition
bundle per task (docs/suites.md, "The suite bundle").

This module only reads and checks; suites/services_bundles.py writes the suite. Every
problem of suite.yaml (with its line) and of every task's competition bundle (prefixed
with the task and its file) is gathered into one BundleInvalid, so an organizer fixes a
suite in one round. Each task folder is read by competitions/bundles.py, unchanged.
"""

from __future__ import annotations

import re
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from django.conf import settings

from competitions.bundle_phases import BundlePhase
from competitions.bundles import (
    BUNDLE_YAML,
    SLUG_RE,
    Bundle,
    bundle_open,
    bundle_read,
    schedule_read,
)
from competitions.errors import BundleInvalid
from competitions.models import Competition
from competitions.zips import MAX_ZIP_ENTRIES, unzip_bundle
from suites.models import Suite

SUITE_YAML = "suite.yaml"
TOP_KEYS = ("slug", "title", "description", "rules", "visibility", "split_seed", "phases", "tasks")
TASK_KEYS = ("key", "folder")
MARKDOWN_SUFFIXES = (".md", ".markdown", ".txt")
BIGINT = 1 << 63


@dataclass(frozen=True)
class SuiteBundleTask:
    key: str
    folder: str  # as suite.yaml names it
    bundle: Bundle


@dataclass(frozen=True)
class SuiteBundle:
    slug: str
    title: str
    description: str
    rules: str
    visibility: str
    split_seed: int | None
    tasks: list[SuiteBundleTask]
    # The suite's schedule (suite.yaml's `phases`), which every task follows; None: each
    # task's bundle lists its own phases.
    phases: list[BundlePhase] | None = None


def suite_bundle_open(source: Path, *, workdir: Path) -> Path:
    """The folder holding suite.yaml: `source` itself, or where its zip or tar was unpacked."""
    source = Path(source)
    if source.is_dir():
        root = source.resolve()
    elif zipfile.is_zipfile(source):
        unzip_bundle(source, workdir)
        root = _archive_root(workdir)
    elif tarfile.is_tarfile(source):
        untar_bundle(source, workdir)
        root = _archive_root(workdir)
    else:
        raise BundleInvalid([f"{source.name}: not a folder, a zip or a tar file."])
    yaml_path = root / SUITE_YAML
    if yaml_path.is_symlink() or not yaml_path.is_file():
        raise BundleInvalid([f"The suite bundle has no {SUITE_YAML} at its top level."])
    return root


def _archive_root(workdir: Path) -> Path:
    """Archiving a folder usually nests everything under it; accept that as the root too."""
    if (workdir / SUITE_YAML).exists():
        return workdir.resolve()
    children = [c for c in workdir.iterdir() if c.is_dir()]
    if len(children) == 1 and (children[0] / SUITE_YAML).exists():
        return children[0].resolve()
    return workdir.resolve()


def untar_bundle(source: Path, dest: Path) -> None:
    """Unpack a tar (gzipped or not) with the same limits as a zip: regular files and
    folders only, nothing outside `dest`, at most the upload limit in bytes."""
    limit = settings.HELDOUT_MAX_UPLOAD_BYTES
    try:
        with tarfile.open(source) as tf:
            members = tf.getmembers()
            problems = [p for m in members if (p := _tar_member_problem(m))]
            if len(members) > MAX_ZIP_ENTRIES:
                problems.append(
                    f"The archive holds {len(members)} entries; at most {MAX_ZIP_ENTRIES} are allowed."
                )
            size = sum(m.size for m in members if m.isfile())
            if size > limit:
                problems.append(
                    f"The archive unpacks to {size} bytes, more than the limit of {limit}."
                )
            if problems:
                raise BundleInvalid(problems)
            tf.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise BundleInvalid([f"{source.name}: not a readable tar file ({exc})."]) from None


def _tar_member_problem(member: tarfile.TarInfo) -> str | None:
    name = member.name
    if not (member.isfile() or member.isdir()) or stat.S_ISLNK(member.mode):
        return f"{name}: only files and folders are allowed in a bundle."
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return f"{name}: entries must be relative paths with forward slashes."
    if ".." in PurePosixPath(name).parts:
        return f"{name}: entries must not contain '..'."
    return None


def yaml_lines(text: str) -> dict[str, int]:
    """The line (1-based) of each key and list item of a YAML document, by its path as the
    problems name it: "slug", "tasks", "tasks[1]", "tasks[1].folder"."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, path: str) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = f"{path}.{key.value}" if path else str(key.value)
                lines[name] = key.start_mark.line + 1
                walk(value, name)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, "")
    return lines


class _Reader:
    """Records suite.yaml's problems, each with the line of the key it is about."""

    def __init__(self, root: Path, lines: dict[str, int]):
        self.root = root
        self.lines = lines
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        path = key
        while path and path not in self.lines:  # a missing key: its parent's line
            parent = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", path)
            path = "" if parent == path else parent
        line = self.lines.get(path, 1)
        self.problems.append(f"{SUITE_YAML} line {line}: {key}: {message}")

    def mapping(self, value: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.problem(key or "(top level)", "must be a mapping of keys to values.")
            return {}
        for extra in sorted(set(map(str, value)) - set(allowed)):
            name = f"{key}.{extra}" if key else extra
            self.problem(name, f"unknown key (known: {', '.join(sorted(allowed))}).")
        return value

    def text(self, data: dict, key: str, prefix: str = "", *, max_length: int = 200) -> str:
        value = data.get(key)
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            self.problem(prefix + key, "is required and must be text.")
            return ""
        if len(str(value)) > max_length:
            self.problem(prefix + key, f"is longer than {max_length} characters.")
        return str(value).strip()

    def markdown(self, data: dict, key: str) -> str:
        value = data.get(key) or ""
        if not isinstance(value, str):
            self.problem(key, "must be Markdown text or the path of a Markdown file.")
            return ""
        if "\n" in value.strip() or not value.strip().lower().endswith(MARKDOWN_SUFFIXES):
            return value
        path = self.inside(value.strip(), key, folder=False)
        if path is None:
            return ""
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            self.problem(key, f'"{value}" is not UTF-8 text.')
            return ""

    def inside(self, value: Any, key: str, *, folder: bool) -> Path | None:
        """A file (or folder, or a competition bundle's zip) inside the bundle, named
        relative to suite.yaml, reached through no symbolic link."""
        what = "a folder (or zip)" if folder else "a file"
        if not isinstance(value, str) or not value.strip():
            self.problem(key, f"must be the path of {what} relative to {SUITE_YAML}.")
            return None
        parts = PurePosixPath(value).parts
        if "\\" in value or value.startswith("/") or ".." in parts:
            self.problem(key, f'"{value}" must be a relative path with forward slashes, no "..".')
            return None
        current = self.root
        for part in parts:
            current = current / part
            if current.is_symlink():
                self.problem(key, f'"{value}" is a symbolic link; bundles hold real files only.')
                return None
        found = (current.is_dir() or zipfile.is_zipfile(current)) if folder else current.is_file()
        if not current.exists() or not found:
            self.problem(key, f'"{value}" is not {what} in the bundle.')
            return None
        return current


def suite_bundle_read(root: Path, *, workdir: Path) -> SuiteBundle:
    """Parse and check suite.yaml and every task's competition bundle; raise BundleInvalid
    with all their problems at once."""
    try:
        text = (root / SUITE_YAML).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BundleInvalid([f"{SUITE_YAML}: not valid YAML ({exc})."]) from None
    reader = _Reader(root, yaml_lines(text))
    data = reader.mapping(data, "", TOP_KEYS)
    if not data:
        raise BundleInvalid(reader.problems or [f"{SUITE_YAML} is empty."])
    slug = reader.text(data, "slug", max_length=80)
    if slug and not SLUG_RE.match(slug):
        reader.problem(
            "slug", f'"{slug}" may hold only lowercase letters, digits and single hyphens.'
        )
    elif slug and Suite.objects.filter(slug=slug).exists():
        reader.problem("slug", f'a suite named "{slug}" already exists; choose another slug.')
    title = reader.text(data, "title")
    description = reader.markdown(data, "description")
    rules = reader.markdown(data, "rules")
    visibility = data.get("visibility", "public")
    if visibility not in Competition.Visibility.values:
        reader.problem(
            "visibility",
            f"{visibility!r} is not one of {', '.join(Competition.Visibility.values)}.",
        )
    seed = data.get("split_seed")
    if seed is not None and (
        not isinstance(seed, int) or isinstance(seed, bool) or not -BIGINT <= seed < BIGINT
    ):
        reader.problem("split_seed", f"{seed!r} must be a whole number (64 bits) or null.")
        seed = None
    phases = _read_schedule(reader, data["phases"]) if "phases" in data else None
    tasks = _read_tasks(reader, data.get("tasks"), workdir, phases)
    if reader.problems:
        raise BundleInvalid(reader.problems)
    return SuiteBundle(
        slug=slug,
        title=title,
        description=description,
        rules=rules,
        visibility=str(visibility),
        split_seed=seed,
        tasks=tasks,
        phases=phases,
    )


def _read_schedule(reader: _Reader, value: Any) -> list[BundlePhase]:
    """The suite's phases: a competition bundle's phases without the per-task keys, read by
    the same code (competitions/bundle_phases.py), listed in the order they start."""
    phases, problems = schedule_read(value, root=reader.root)
    for problem in problems:
        key, _, message = problem.partition(": ")
        reader.problem(key, message)
    for i in range(1, len(phases)):
        if phases[i].start_at <= phases[i - 1].start_at:
            reader.problem(f"phases[{i}].start", "list the phases in the order they start.")
    return phases


def _read_tasks(
    reader: _Reader, value: Any, workdir: Path, phases: list[BundlePhase] | None
) -> list[SuiteBundleTask]:
    if not isinstance(value, list) or not value:
        reader.problem("tasks", "must list at least one task ({key, folder}).")
        return []
    tasks: list[SuiteBundleTask] = []
    keys: list[str] = []
    slugs: dict[str, str] = {}
    for i, item in enumerate(value):
        p = f"tasks[{i}]"
        data = reader.mapping(item, p, TASK_KEYS)
        key = reader.text(data, "key", p + ".", max_length=80) if data else ""
        if key and not SLUG_RE.match(key):
            reader.problem(
                p + ".key", f'"{key}" may hold only lowercase letters, digits and single hyphens.'
            )
        elif key and key in keys:
            reader.problem(p + ".key", f'"{key}" is the key of another task too.')
        keys.append(key)
        folder = reader.inside(data.get("folder"), p + ".folder", folder=True) if data else None
        if folder is None:
            continue
        label = f"{p} ({key or '?'})"
        bundle = _read_task_bundle(reader, folder, label, workdir / f"task-{i}", phases)
        if bundle is None:
            continue
        if bundle.slug in slugs:
            reader.problem(
                p + ".folder", f'its slug "{bundle.slug}" is also {slugs[bundle.slug]}\'s.'
            )
        slugs[bundle.slug] = p
        tasks.append(SuiteBundleTask(key=key, folder=str(data["folder"]), bundle=bundle))
    return tasks


def _read_task_bundle(
    reader: _Reader, folder: Path, label: str, workdir: Path, phases: list[BundlePhase] | None
) -> Bundle | None:
    """The task's competition bundle, or None with its problems recorded under `label`
    and the file they are about. With the suite's `phases`, a bundle that lists none takes
    them, and one that lists some must list the same schedule."""
    name = folder.relative_to(reader.root).as_posix()
    where = name if zipfile.is_zipfile(folder) else f"{name}/{BUNDLE_YAML}"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        bundle = bundle_read(bundle_open(folder, workdir=workdir), phases_given=phases)
    except BundleInvalid as exc:
        reader.problems += [f"{label}: {where}: {problem}" for problem in exc.problems]
        return None
    mismatches = schedule_mismatches(phases, bundle.phases) if phases is not None else []
    reader.problems += [f"{label}: {where}: {problem}" for problem in mismatches]
    return None if mismatches else bundle


SCHEDULE_FIELDS = {  # a schedule's key in the yaml -> the phase's attribute
    "start": "start_at",
    "end": "end_at",
    "daily_limit": "daily_limit",
    "total_limit": "total_limit",
    "late_submissions_scored": "late_submissions_scored",
}


def schedule_mismatches(suite: list[BundlePhase], task: list[BundlePhase]) -> list[str]:
    """How a task's phases differ from the suite's schedule (the same names in the same
    order, with the same dates, quotas and kind; per-task keys are the task's), each "key:
    message" as a bundle's problems."""
    names, theirs = [p.name for p in suite], [p.name for p in task]
    if names != theirs:
        listed = ", ".join(f'"{n}"' for n in names)
        return [f"phases: must be the suite's ({listed}, in that order), or left out."]
    problems = []
    for i, (ours, its) in enumerate(zip(suite, task, strict=True)):
        wanted = {key: getattr(ours, attr) for key, attr in SCHEDULE_FIELDS.items()}
        wanted |= {"kind": ours.settings.kind}
        wanted |= {"allow_build_context": ours.settings.allow_build_context}
        found = {key: getattr(its, attr) for key, attr in SCHEDULE_FIELDS.items()}
        found |= {
            "kind": its.settings.kind,
            "allow_build_context": its.settings.allow_build_context,
        }
        problems += [
            f'phases[{i}].{key}: {_shown(found[key])} differs from the suite\'s phase "{ours.name}" '
            f"({_shown(wanted[key])}); leave phases out to take the suite's."
            for key in wanted
            if found[key] != wanted[key]
        ]
    return problems


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return (
        "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )
