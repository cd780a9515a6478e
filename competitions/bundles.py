"""Reading a competition bundle: a folder or zip holding competition.yaml and the files it names.

This module only reads and checks; competitions/services/bundles.py writes the competition.
Every check adds to one list of problems, each prefixed with the yaml key it is about, so
an organizer fixes a bundle in one round instead of one error at a time. docs/bundle.md
describes the format.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from competitions.bundle_data import data_problems
from competitions.bundle_phases import SCHEDULE_PHASE_KEYS, check_phase_truths, read_phases
from competitions.bundle_phases import BundlePhase as BundlePhase  # defined there, read here
from competitions.bundle_settings import (
    COMPETITION_SETTING_KEYS,
    TASK_SETTING_KEYS,
    CompetitionSettings,
    TaskSettings,
    check_phase_references,
    check_tie_rule,
    read_competition_settings,
    read_task_settings,
)
from competitions.errors import BundleInvalid
from competitions.models import Competition, TaskFile
from competitions.zips import unzip_bundle
from scoring.metrics import metrics_for_task_type
from scoring.spec import TASK_TYPES, TaskSpec

BUNDLE_YAML = "competition.yaml"
# Single-line values ending like this name a file; anything else is inline Markdown.
MARKDOWN_SUFFIXES = (".md", ".markdown", ".txt")
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

TOP_KEYS = {"slug", "title", "description", "rules", "visibility", "start", "end"}
TOP_KEYS |= {"selection_limit", "task", "phases"} | COMPETITION_SETTING_KEYS
TASK_KEYS = {"type", "id_column", "target_columns", "classes", "primary_metric"}
TASK_KEYS |= {"secondary_metrics", "ground_truth", "files"} | TASK_SETTING_KEYS
FILE_KEYS = {"path", "kind", "name", "description", "released_with"}


@dataclass(frozen=True)
class BundleFile:
    path: Path
    name: str
    kind: str
    description: str
    released_with: str | None = None  # a phase's name: hidden until that phase starts


@dataclass(frozen=True)
class Bundle:
    slug: str
    title: str
    description: str
    rules: str
    visibility: str
    start_at: datetime | None
    end_at: datetime | None
    selection_limit: int
    spec: TaskSpec
    ground_truth: Path
    files: list[BundleFile]
    phases: list[BundlePhase]
    settings: CompetitionSettings = field(default_factory=CompetitionSettings)
    task_settings: TaskSettings = field(default_factory=TaskSettings)


def bundle_open(source: Path, *, workdir: Path) -> Path:
    """The folder holding competition.yaml: `source` itself, or where its zip was unpacked."""
    if source.is_dir():
        root = source.resolve()
    elif zipfile.is_zipfile(source):
        unzip_bundle(source, workdir)
        root = _zip_root(workdir)
    else:
        raise BundleInvalid([f"{source.name}: not a folder or a zip file."])
    yaml_path = root / BUNDLE_YAML
    if yaml_path.is_symlink() or not yaml_path.is_file():
        raise BundleInvalid([f"The bundle has no {BUNDLE_YAML} at its top level."])
    return root


def _zip_root(workdir: Path) -> Path:
    """Zipping a folder usually nests everything under it; accept that as the root too."""
    if (workdir / BUNDLE_YAML).exists():
        return workdir.resolve()
    children = [c for c in workdir.iterdir() if c.is_dir()]
    if len(children) == 1 and (children[0] / BUNDLE_YAML).exists():
        return children[0].resolve()
    return workdir.resolve()


class _Reader:
    """Reads values out of the parsed yaml, recording a problem instead of raising."""

    def __init__(self, root: Path):
        self.root = root
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def mapping(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.problem(key, "must be a mapping of keys to values.")
            return {}
        for extra in sorted(set(map(str, value)) - allowed):
            self.problem(
                f"{key}.{extra}" if key else extra,
                f"unknown key (known: {', '.join(sorted(allowed))}).",
            )
        return value

    def text(self, data: dict, key: str, prefix: str = "", *, max_length: int = 200) -> str:
        value = data.get(key)
        if (
            not isinstance(value, str | int | float)
            or isinstance(value, bool)
            or not str(value).strip()
        ):
            self.problem(prefix + key, "is required and must be text.")
            return ""
        if len(str(value)) > max_length:
            self.problem(prefix + key, f"is longer than {max_length} characters.")
        return str(value).strip()

    def choice(
        self,
        data: dict,
        key: str,
        choices: list[str],
        prefix: str = "",
        *,
        default: str | None = None,
    ) -> str:
        value = data.get(key, default)
        if value not in choices:
            self.problem(prefix + key, f"{_show(value)} is not one of {', '.join(choices)}.")
            return choices[0]
        return value

    def integer(
        self,
        data: dict,
        key: str,
        prefix: str = "",
        *,
        default: int | None,
        minimum: int,
        nullable: bool = False,
    ) -> int | None:
        value = data.get(key, default)
        if value is None and nullable:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            allowed = f"a whole number of at least {minimum}" + (" or null" if nullable else "")
            self.problem(prefix + key, f"{_show(value)} must be {allowed}.")
            return minimum
        return value

    def boolean(self, data: dict, key: str, prefix: str = "", *, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.problem(prefix + key, f"{_show(value)} must be true or false.")
            return default
        return value

    def when(self, data: dict, key: str, prefix: str = "") -> datetime | None:
        """A date and time; without a timezone it is read as UTC."""
        value = data.get(key)
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                self.problem(
                    prefix + key,
                    f"{_show(value)} is not a date and time like 2026-01-01T00:00:00Z.",
                )
                return None
        elif isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day, tzinfo=UTC)
        elif value is not None and not isinstance(value, datetime):
            self.problem(
                prefix + key, f"{_show(value)} is not a date and time like 2026-01-01T00:00:00Z."
            )
            return None
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def text_list(self, data: dict, key: str, prefix: str = "", *, required: bool) -> list[str]:
        value = data.get(key, None if required else [])
        if not isinstance(value, list) or (required and not value):
            self.problem(
                prefix + key, "must be a list" + (" with at least one item." if required else ".")
            )
            return []
        if any(isinstance(v, dict | list | bool) or v is None for v in value):
            self.problem(prefix + key, "items must be plain text or numbers.")
            return []
        return [str(v) for v in value]

    def path(self, value: Any, key: str) -> Path | None:
        """A regular file inside the bundle, named relative to competition.yaml."""
        if not isinstance(value, str) or not value.strip():
            self.problem(key, "must be a file path relative to competition.yaml.")
            return None
        if "\\" in value or value.startswith("/") or re.match(r"^[A-Za-z]:", value):
            self.problem(key, f"{_show(value)} must be a relative path with forward slashes.")
            return None
        parts = PurePosixPath(value).parts
        if ".." in parts:
            self.problem(key, f"{_show(value)} must not contain '..'.")
            return None
        current = self.root
        for part in parts:
            current = current / part
            if current.is_symlink():
                self.problem(
                    key, f"{_show(value)} is a symbolic link; bundles hold real files only."
                )
                return None
        if not current.is_file():
            self.problem(key, f"{_show(value)} is not a file in the bundle.")
            return None
        return current

    def markdown(self, data: dict, key: str) -> str:
        value = data.get(key, "")
        if value is None:
            return ""
        if not isinstance(value, str):
            self.problem(key, "must be Markdown text or the path of a Markdown file.")
            return ""
        if "\n" not in value.strip() and value.strip().lower().endswith(MARKDOWN_SUFFIXES):
            path = self.path(value.strip(), key)
            if path is None:
                return ""
            try:
                return path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                self.problem(key, f"{_show(value)} is not UTF-8 text.")
                return ""
        return value


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return "null" if value is None else str(value)


def bundle_read(
    root: Path, *, existing_ok: bool = False, phases_given: list[BundlePhase] | None = None
) -> Bundle:
    """Parse and check competition.yaml and every file it names; raise with all problems.

    An existing slug is a problem unless `existing_ok` (applying a bundle updates it).
    `phases_given`: the phases a bundle that lists none takes (a suite's schedule, read and
    checked by the suite); without them `phases` is required.
    """
    reader = _Reader(root)
    try:
        data = yaml.safe_load((root / BUNDLE_YAML).read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BundleInvalid([f"{BUNDLE_YAML}: not valid YAML ({exc})."]) from None
    data = reader.mapping(data, "", TOP_KEYS)
    if not data:
        raise BundleInvalid(reader.problems or [f"{BUNDLE_YAML} is empty."])
    given = phases_given if "phases" not in data else None
    bundle = _read_top(reader, data, existing_ok=existing_ok, phases_given=given)
    if reader.problems or bundle is None:
        raise BundleInvalid(reader.problems)
    problems = data_problems(bundle)
    if problems:
        raise BundleInvalid(problems)
    return bundle


def schedule_read(value: Any, *, root: Path) -> tuple[list[BundlePhase], list[str]]:
    """A schedule of phases on its own (a suite's): the phases and their problems, each
    "key: message" as a bundle's; no per-task keys, and every start given."""
    reader = _Reader(root)
    phases = read_phases(reader, value, default_start=None, keys=SCHEDULE_PHASE_KEYS, start_hint="")
    return phases, reader.problems


def _read_top(
    reader: _Reader, data: dict, *, existing_ok: bool, phases_given: list[BundlePhase] | None
) -> Bundle | None:
    slug = reader.text(data, "slug", max_length=80)
    if slug and not SLUG_RE.match(slug):
        reader.problem(
            "slug", f'"{slug}" may hold only lowercase letters, digits and single hyphens.'
        )
    elif not existing_ok and slug and Competition.objects.filter(slug=slug).exists():
        reader.problem("slug", f'a competition named "{slug}" already exists; choose another slug.')
    start_at = reader.when(data, "start")
    end_at = reader.when(data, "end")
    if start_at and end_at and end_at <= start_at:
        reader.problem("end", "must be after start.")
    title = reader.text(data, "title")
    description = reader.markdown(data, "description")
    rules = reader.markdown(data, "rules")
    visibilities = list(Competition.Visibility.values)
    visibility = reader.choice(data, "visibility", visibilities, default="public")
    selection_limit = reader.integer(data, "selection_limit", default=2, minimum=1) or 1
    competition_settings = read_competition_settings(reader, data)
    task = _read_task(reader, data.get("task"))
    check_tie_rule(reader, competition_settings, data.get("task"))
    if phases_given is None:
        phases = read_phases(reader, data.get("phases"), default_start=start_at)
    else:
        phases = list(phases_given)
    check_phase_references(reader, data, names=[p.name for p in phases_given or []] or None)
    if task is None:
        return None
    spec, ground_truth, files, task_settings = task
    check_phase_truths(reader, phases, files)
    return Bundle(
        slug=slug,
        title=title,
        description=description,
        rules=rules,
        visibility=visibility,
        start_at=start_at,
        end_at=end_at,
        selection_limit=selection_limit,
        spec=spec,
        ground_truth=ground_truth,
        files=files,
        phases=phases,
        settings=competition_settings,
        task_settings=task_settings,
    )


def _read_task(
    reader: _Reader, value: Any
) -> tuple[TaskSpec, Path, list[BundleFile], TaskSettings] | None:
    data = reader.mapping(value, "task", TASK_KEYS)
    if not data:
        if isinstance(value, dict):
            reader.problem("task", "is required.")
        return None
    p = "task."
    before = len(reader.problems)
    task_type = reader.choice(data, "type", list(TASK_TYPES), p)
    id_column = reader.text(data, "id_column", p, max_length=100)
    targets = reader.text_list(data, "target_columns", p, required=True)
    classes = reader.text_list(data, "classes", p, required=False)
    metrics = [m.name for m in metrics_for_task_type(task_type)]
    primary = str(data.get("primary_metric"))
    if primary not in metrics:
        reader.problem(
            "task.primary_metric",
            f"{_show(data.get('primary_metric'))} is not a metric for {task_type} tasks (choose from {', '.join(metrics)}).",
        )
    secondary = reader.text_list(data, "secondary_metrics", p, required=False)
    for i, name in enumerate(secondary):
        if name not in metrics:
            reader.problem(
                f"task.secondary_metrics[{i}]",
                f'"{name}" is not a metric for {task_type} tasks (choose from {", ".join(metrics)}).',
            )
    ground_truth = reader.path(data.get("ground_truth"), "task.ground_truth")
    files = _read_files(reader, data.get("files"), ground_truth)
    task_settings = read_task_settings(reader, data)
    if len(reader.problems) > before or ground_truth is None:
        return None
    try:
        spec = TaskSpec(
            id_column=id_column,
            target_columns=tuple(targets),
            task_type=task_type,  # type: ignore[arg-type]
            primary_metric=primary,
            secondary_metrics=tuple(secondary),
            classes=tuple(classes),
        )
    except ValueError as exc:
        reader.problem("task", str(exc).removeprefix("Invalid task spec: "))
        return None
    return spec, ground_truth, files, task_settings


def _read_files(reader: _Reader, value: Any, ground_truth: Path | None) -> list[BundleFile]:
    if not isinstance(value, list) or not value:
        reader.problem("task.files", "must list the public files, including one with kind: sample.")
        return []
    files: list[BundleFile] = []
    for i, item in enumerate(value):
        key = f"task.files[{i}]"
        data = reader.mapping(item, key, FILE_KEYS)
        path = reader.path(data.get("path"), f"{key}.path") if data else None
        kind = reader.choice(data, "kind", list(TaskFile.Kind.values), f"{key}.")
        if path is None:
            continue
        name = str(data.get("name") or path.name)
        if "/" in name or name.startswith(".") or len(name) > 200:
            reader.problem(f"{key}.name", f"{_show(name)} must be a plain file name.")
        if ground_truth is not None and path.resolve() == ground_truth.resolve():
            reader.problem(f"{key}.path", "is the ground truth, which must never be published.")
        description = str(data.get("description") or "")[:300]
        released = data.get("released_with")  # checked against the phases' names later
        files.append(
            BundleFile(
                path=path,
                name=name,
                kind=kind,
                description=description,
                released_with=None if released is None else str(released),
            )
        )
    names = [f.name for f in files]
    for name in sorted({n for n in names if names.count(n) > 1}):
        reader.problem("task.files", f'two files are named "{name}"; give one a different name.')
    if files and not any(f.kind == TaskFile.Kind.SAMPLE for f in files):
        reader.problem("task.files", "must include a sample submission (kind: sample).")
    return files
