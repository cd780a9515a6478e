"""An organizer-written scoring program, run in the sandbox (contract: docs/scorers.md).

The program is a score.py, or a zip holding one with its helper modules. It runs as
`python /program/score.py` in a container of a platform-known image, reads
/input/predictions, /input/truth and /input/spec.json, and writes /output/scores.json:

    {"public": {"metric": value, ...}, "private": {"metric": value, ...}}

or, when the participant's file cannot be scored, {"problems": ["what is wrong", ...]}.
Everything it writes is checked here on the host: it came out of a sandbox, and out of
code the platform did not write.

Nothing here imports Django.
"""

from __future__ import annotations

import json
import math
import shutil
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from scoring.docker_scorer import sandboxed_score
from scoring.evaluate import SPLITS, Evaluation
from scoring.sandbox import Mount, SandboxError, SandboxLimits, SandboxRunner
from scoring.scorers import ScoringOutcome
from scoring.spec import TaskSpec
from scoring.validation import Problem

PROGRAM_TARGET = "/program"
ENTRY_POINT = "score.py"
COMMAND = ["python", f"{PROGRAM_TARGET}/{ENTRY_POINT}"]
SCORES_NAME = "scores.json"
ROWS_NAME = "rows.npy"
ROW_KIND = "program"
MAX_SCORES_BYTES = 1 << 20
MAX_PROBLEMS = 100
MAX_PROBLEM_CHARS = 1000
# An uploaded program: a script or a small package of modules, never a data set.
MAX_PROGRAM_FILES = 200
MAX_PROGRAM_BYTES = 20 << 20


class ProgramScorer:
    name = "program"

    def __init__(
        self,
        runner: SandboxRunner,
        image: str,
        limits: SandboxLimits,
        program_path: Path | Callable[[Path], Path],
    ) -> None:
        # A callable fetches the program into the folder it is given (a worker copies it
        # from object storage into the attempt's work folder).
        self.runner = runner
        self.image = image
        self.limits = limits
        self.program_path = program_path

    def score(
        self, *, predictions_path: Path, truth_path: Path, spec: TaskSpec, workdir: Path
    ) -> ScoringOutcome:
        """Run the program on one submission. Raises SandboxError saying why when the run
        or its output fails, and SandboxUnavailable (from the runner) without an engine."""
        program_dir = workdir / "program"
        source = self.program_path
        if callable(source):
            source = source(workdir / "program-source")
        try:
            program_unpack(source, program_dir)
        except ValueError as exc:
            raise SandboxError(f"the scoring program cannot be used: {exc}") from exc
        return sandboxed_score(
            runner=self.runner,
            image=self.image,
            limits=self.limits,
            scorer_name=self.name,
            command=COMMAND,
            predictions_path=predictions_path,
            truth_path=truth_path,
            spec=spec,
            workdir=workdir,
            read=lambda output_dir: read_scores(output_dir, spec),
            unreadable="the scoring program's output was rejected",
            extra_mounts=[Mount(program_dir, PROGRAM_TARGET)],
        )


# --- the program --------------------------------------------------------------------------


def program_unpack(source: Path, dest: Path) -> None:
    """Lay the program out in `dest` (made here) as the sandbox will see it at /program.

    A zip must hold score.py at its root, or inside its one top-level folder; entries
    that are links, absolute or escape with "..", and oversized archives are refused
    (ValueError saying why). Anything else is taken as the score.py source itself.
    """
    dest.mkdir(mode=0o755)
    dest.chmod(0o755)  # against the umask: the sandbox user must enter it
    if zipfile.is_zipfile(source):
        _unzip(source, dest)
    else:
        shutil.copyfile(source, dest / ENTRY_POINT)
    if not (dest / ENTRY_POINT).is_file():
        raise ValueError(f"the zip has no {ENTRY_POINT} at its root")
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _unzip(source: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(source) as archive:
            entries = [info for info in archive.infolist() if not info.is_dir()]
            if len(entries) > MAX_PROGRAM_FILES:
                raise ValueError(f"the zip holds more than {MAX_PROGRAM_FILES} files")
            # zipfile stops each entry at its declared size (and checks its CRC), so the
            # declared sizes bound what is written.
            if sum(info.file_size for info in entries) > MAX_PROGRAM_BYTES:
                raise ValueError(f"the zip unpacks to more than {MAX_PROGRAM_BYTES >> 20} MiB")
            names = [_safe_name(info) for info in entries]
            strip = _single_top_folder(names)
            for info, name in zip(entries, names, strict=True):
                target = dest.joinpath(*name.parts[strip:])
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as packed, target.open("wb") as out:
                    shutil.copyfileobj(packed, out)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as exc:
        raise ValueError(f"the zip cannot be read: {exc}") from exc


def _safe_name(info: zipfile.ZipInfo) -> PurePosixPath:
    name = PurePosixPath(info.filename.replace("\\", "/"))
    if name.is_absolute() or ".." in name.parts or not name.parts:
        raise ValueError(f"the zip entry {info.filename!r} points outside the program folder")
    # Unix zips keep the file type in the high bits; many tools leave it 0 (a plain file).
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise ValueError(f"the zip entry {info.filename!r} is a link or a special file")
    return name


def _single_top_folder(names: list[PurePosixPath]) -> int:
    """1 when every entry sits in one folder and score.py is not at the root, else 0."""
    if PurePosixPath(ENTRY_POINT) in names:
        return 0
    tops = {name.parts[0] for name in names if len(name.parts) > 1}
    roots = [name for name in names if len(name.parts) == 1]
    return 1 if len(tops) == 1 and not roots else 0


# --- its output ---------------------------------------------------------------------------


def read_scores(output_dir: Path, spec: TaskSpec) -> Evaluation:
    """Read and check what the program wrote; ValueError says what is wrong."""
    path = output_dir / SCORES_NAME
    if not path.is_file():
        raise ValueError(f"it wrote no {SCORES_NAME}")
    if path.stat().st_size > MAX_SCORES_BYTES:
        raise ValueError(f"{SCORES_NAME} is larger than {MAX_SCORES_BYTES >> 10} KiB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{SCORES_NAME} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{SCORES_NAME} is not a JSON object")
    if set(data) == {"problems"}:
        problems = _problems(data["problems"])
        return Evaluation(problems, len(problems), {}, None, ROW_KIND)
    if set(data) != set(SPLITS):
        raise ValueError(
            f'{SCORES_NAME} must have exactly the keys "public" and "private" '
            f'(or only "problems"), not {sorted(data)}'
        )
    scores = {split: _split_scores(data[split], split, spec) for split in SPLITS}
    rows = _rows(output_dir / ROWS_NAME)
    return Evaluation([], 0, scores, rows, ROW_KIND if rows is not None else "")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{SCORES_NAME} contains {name}, which is not a finite number")


def _split_scores(data: Any, split: str, spec: TaskSpec) -> dict[str, float | None]:
    if not isinstance(data, dict):
        raise ValueError(f'"{split}" is not an object of metric values')
    unknown = sorted(set(data) - set(spec.metrics))
    if unknown:
        raise ValueError(
            f"unknown metric(s) {', '.join(map(repr, unknown))} in {split}; "
            f"the task's metrics are {', '.join(spec.metrics)}"
        )
    if spec.primary_metric not in data:
        raise ValueError(f"the primary metric {spec.primary_metric!r} is missing in {split}")
    scores: dict[str, float | None] = {}
    for metric, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{split} {metric} is {value!r}, not a number")
        if not math.isfinite(value):
            raise ValueError(f"{split} {metric} is not a finite number")
        scores[metric] = float(value)
    return scores


def _problems(data: Any) -> list[Problem]:
    if not isinstance(data, list) or not data:
        raise ValueError('"problems" must be a non-empty list of messages')
    if not all(isinstance(message, str) and message.strip() for message in data):
        raise ValueError('every entry of "problems" must be a non-empty string')
    return [
        Problem(code="scorer", message=message[:MAX_PROBLEM_CHARS])
        for message in data[:MAX_PROBLEMS]
    ]


def _rows(path: Path) -> np.ndarray | None:
    if not path.exists():
        return None
    try:
        rows = np.load(path, allow_pickle=False)
    except OSError as exc:
        # strerror only: the exception's text names the worker's own folder.
        raise ValueError(f"{ROWS_NAME} is unreadable: {exc.strerror or 'cannot be read'}") from exc
    except (ValueError, EOFError) as exc:
        raise ValueError(f"{ROWS_NAME} is unreadable: {exc}") from exc
    if rows.ndim != 1 or rows.dtype.kind != "f":
        raise ValueError(f"{ROWS_NAME} is not a vector of floats")
    return rows.astype(np.float32, copy=False)
