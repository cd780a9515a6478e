"""The settings part of a bundle: everything an organizer can change besides the task's data.

competitions/bundles.py reads the data (ground truth, files, phases' dates); this module
reads the keys that make a code competition rebuildable from its bundle: team size and
publication settings, how and where the task is scored (queue, sandbox limits, scorer
image and program), and each phase's kind. Defaults are the models' defaults, so a bundle
written before these keys existed imports as it did. docs/bundle.md lists them.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from competitions.rules import (
    TIE_EARLIER,
    TIE_RULE_CHOICES,
    board_metric_problems,
    tie_rule_problems,
)
from competitions.sandboxes import sandbox_limits
from scoring.program_scorer import MAX_PROGRAM_BYTES, program_unpack

if TYPE_CHECKING:
    from competitions.bundles import _Reader

COMPETITION_SETTING_KEYS = {"max_team_size", "labels_published", "replicate_top_n", "public_board"}
PUBLIC_BOARDS = ["plain", "ladder"]
COMPETITION_SETTING_KEYS |= {"tie_rule", "tie_break_metric"}
TASK_SETTING_KEYS = {"queue", "limits", "inference_limits", "scorer_image"}
TASK_SETTING_KEYS |= {"scorer_logs_visible", "scorer_program", "scorer_program_public", "activate"}
PHASE_SETTING_KEYS = {"kind", "allow_build_context", "board_metrics"}
PHASE_KINDS = ["predictions", "container"]
TIE_RULES = [value for value, _ in TIE_RULE_CHOICES]
QUEUE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


@dataclass(frozen=True)
class CompetitionSettings:
    max_team_size: int = 5
    labels_published: bool = False
    replicate_top_n: int = 0
    tie_rule: str = TIE_EARLIER
    tie_break_metric: str = ""
    public_board: str = "plain"


@dataclass(frozen=True)
class TaskSettings:
    queue: str = "cpu"
    limits: dict[str, Any] = field(default_factory=dict)
    inference_limits: dict[str, Any] = field(default_factory=dict)
    scorer_image: str = ""
    scorer_logs_visible: bool = False
    scorer_program: Path | None = None
    scorer_program_public: bool = False
    # Apply only: rank a new ground truth at once (docs/bundle.md, "Applying a bundle").
    activate: bool = False


@dataclass(frozen=True)
class PhaseSettings:
    kind: str = "predictions"
    allow_build_context: bool = False
    # The leaderboard's columns during the phase (Phase.board_metrics); empty: all metrics.
    board_metrics: tuple[str, ...] = ()


def read_competition_settings(reader: _Reader, data: dict) -> CompetitionSettings:
    return CompetitionSettings(
        max_team_size=reader.integer(data, "max_team_size", default=5, minimum=1) or 1,
        labels_published=reader.boolean(data, "labels_published", default=False),
        replicate_top_n=reader.integer(data, "replicate_top_n", default=0, minimum=0) or 0,
        tie_rule=reader.choice(data, "tie_rule", TIE_RULES, default=TIE_EARLIER),
        tie_break_metric=str(data.get("tie_break_metric") or ""),
        public_board=reader.choice(data, "public_board", PUBLIC_BOARDS, default="plain"),
    )


def check_tie_rule(reader: _Reader, cs: CompetitionSettings, task: Any) -> None:
    """The tie rule against the secondary metrics the bundle's task lists, even when the
    task has problems of its own, so every problem is reported at once."""
    listed = task.get("secondary_metrics", []) if isinstance(task, dict) else []
    secondary = [str(m) for m in listed] if isinstance(listed, list) else []
    problems = tie_rule_problems(
        tie_rule=cs.tie_rule, tie_break_metric=cs.tie_break_metric, computed=secondary
    )
    for key, message in problems.items():
        reader.problem(key, message)


def read_task_settings(reader: _Reader, data: dict) -> TaskSettings:
    p = "task."
    queue = data.get("queue", "cpu")
    if not isinstance(queue, str) or not QUEUE_RE.match(queue):
        reader.problem(p + "queue", "must be a queue name: letters, digits, _ . - (at most 40).")
        queue = "cpu"
    image = data.get("scorer_image") or ""
    if not isinstance(image, str) or (image and image not in settings.HELDOUT_SCORER_IMAGES):
        known = ", ".join(settings.HELDOUT_SCORER_IMAGES)
        reader.problem(p + "scorer_image", f"{image!r} is not a scorer image here ({known}).")
        image = ""
    program = None
    if data.get("scorer_program") is not None:
        program = reader.path(data.get("scorer_program"), p + "scorer_program")
        if program is not None:
            _check_program(reader, program)
    return TaskSettings(
        queue=queue,
        limits=_limits(reader, data, "limits"),
        inference_limits=_limits(reader, data, "inference_limits"),
        scorer_image=image,
        scorer_logs_visible=reader.boolean(data, "scorer_logs_visible", p, default=False),
        scorer_program=program,
        scorer_program_public=reader.boolean(data, "scorer_program_public", p, default=False),
        activate=reader.boolean(data, "activate", p, default=False),
    )


def _limits(reader: _Reader, data: dict, key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        reader.problem(f"task.{key}", "must be a mapping such as {memory_mb: 1024, timeout_s: 60}.")
        return {}
    try:
        sandbox_limits(overrides=value)
    except ValueError as exc:
        reader.problem(f"task.{key}", f"{exc}.")
        return {}
    return dict(value)


def _check_program(reader: _Reader, program: Path) -> None:
    key = "task.scorer_program"
    if program.suffix not in (".py", ".zip"):
        reader.problem(key, "must be a score.py or a zip holding one (.py or .zip).")
    elif program.stat().st_size > MAX_PROGRAM_BYTES:
        reader.problem(key, f"is larger than {MAX_PROGRAM_BYTES >> 20} MiB.")
    else:
        with tempfile.TemporaryDirectory(prefix="heldout-program-") as tmp:
            try:
                program_unpack(program, Path(tmp) / "program")
            except ValueError as exc:
                reader.problem(key, f"cannot be used: {exc}.")


def read_phase_settings(reader: _Reader, data: dict, prefix: str) -> PhaseSettings:
    return PhaseSettings(
        kind=reader.choice(data, "kind", PHASE_KINDS, prefix, default="predictions"),
        allow_build_context=reader.boolean(data, "allow_build_context", prefix, default=False),
        board_metrics=tuple(reader.text_list(data, "board_metrics", prefix, required=False)),
    )


def check_phase_references(reader: _Reader, data: dict, *, names: list[str] | None = None) -> None:
    """What refers across the task and the phases, read from the yaml as written (so it is
    checked even when the task or a phase has problems of its own): a file's
    `released_with` names a phase of the bundle (or of `names`, the phases it was given),
    and a phase's `board_metrics` are metrics the task computes, every wrong name listed."""
    phases = [p for p in _items(data.get("phases")) if isinstance(p, dict)]
    if names is None:
        names = [str(p.get("name")) for p in phases if p.get("name") is not None]
    task: dict = data["task"] if isinstance(data.get("task"), dict) else {}
    for i, item in enumerate(_items(task.get("files"))):
        wanted = item.get("released_with") if isinstance(item, dict) else None
        if wanted is not None and (not isinstance(wanted, str) or wanted not in names):
            reader.problem(
                f"task.files[{i}].released_with",
                f"{wanted!r} is not a phase of this bundle (phases: {', '.join(names)}).",
            )
    listed = task.get("secondary_metrics", [])
    computed = [str(task.get("primary_metric"))]
    computed += [str(m) for m in listed] if isinstance(listed, list) else []
    for i, phase in enumerate(phases):
        shown = phase.get("board_metrics") or []
        if not isinstance(shown, list):
            continue  # read_phase_settings said so
        problems = board_metric_problems(board_metrics=[str(m) for m in shown], computed=computed)
        for message in problems.values():
            reader.problem(f"phases[{i}].board_metrics", message)


def _items(value: Any) -> list:
    return value if isinstance(value, list) else []
