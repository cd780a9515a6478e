"""The Scorer production workers use: scoring.cli inside a sandboxed container.

The container sees the spec, the predictions and the ground truth read-only under /input,
and writes its result to /output; the host then reads that result back, checking every
field, since it came out of the sandbox.
"""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from scoring.cli import read_result
from scoring.evaluate import Evaluation
from scoring.sandbox import Mount, SandboxError, SandboxLimits, SandboxRunner
from scoring.scorers import ScoringOutcome
from scoring.spec import TaskSpec

COMMAND = [
    "python",
    "-m",
    "scoring.cli",
    "--spec",
    "/input/spec.json",
    "--predictions",
    "/input/predictions",
    "--truth",
    "/input/truth",
    "--out",
    "/output",
]


class DockerScorer:
    name = "docker"

    def __init__(
        self, runner: SandboxRunner, image: str, limits: SandboxLimits, max_problems: int = 100
    ) -> None:
        self.runner = runner
        self.image = image
        self.limits = limits
        self.max_problems = max_problems

    def score(
        self, *, predictions_path: Path, truth_path: Path, spec: TaskSpec, workdir: Path
    ) -> ScoringOutcome:
        """Score in the sandbox. Raises SandboxError saying why when the run fails, and
        SandboxUnavailable (from the runner) when the engine cannot be used."""
        return sandboxed_score(
            runner=self.runner,
            image=self.image,
            limits=self.limits,
            scorer_name=self.name,
            command=[*COMMAND, "--max-problems", str(self.max_problems)],
            predictions_path=predictions_path,
            truth_path=truth_path,
            spec=spec,
            workdir=workdir,
            read=read_result,
            unreadable="the scorer's output could not be read",
        )


def sandboxed_score(
    *,
    runner: SandboxRunner,
    image: str,
    limits: SandboxLimits,
    scorer_name: str,
    command: list[str],
    predictions_path: Path,
    truth_path: Path,
    spec: TaskSpec,
    workdir: Path,
    read: Callable[[Path], Evaluation],
    unreadable: str,
    extra_mounts: Sequence[Mount] = (),
) -> ScoringOutcome:
    """Run a scorer container on one submission: the spec, predictions and truth mounted
    read-only under /input, its result read back from /output by `read`.

    Shared by the built-in scorer and organizers' programs. Raises SandboxError saying
    why when the run or its output fails (`unreadable` prefixes the latter).
    """
    spec_path = workdir / "spec.json"
    spec_path.write_text(json.dumps(spec.to_dict()), encoding="utf-8")
    spec_path.chmod(0o644)
    output_dir = workdir / "output"
    result = runner.run(
        image=image,
        command=command,
        mounts=[
            Mount(spec_path, "/input/spec.json"),
            Mount(_readable(predictions_path, workdir / "predictions"), "/input/predictions"),
            Mount(_readable(truth_path, workdir / "truth"), "/input/truth"),
            *extra_mounts,
        ],
        output_dir=output_dir,
        limits=limits,
        labels={"heldout.scorer": scorer_name},
    )
    reason = result.failure_reason(limits)
    if reason is not None:
        raise SandboxError(reason)
    try:
        evaluation = read(output_dir)
    except ValueError as exc:
        raise SandboxError(f"{unreadable}: {exc}") from exc
    return ScoringOutcome(
        evaluation=evaluation,
        duration_s=result.duration_s,
        peak_memory_bytes=result.peak_memory_bytes,
        scorer_name=scorer_name,
        scorer_image=f"{result.image}@{result.image_digest}",
        log=result.log,
    )


def _readable(path: Path, copy_to: Path) -> Path:
    """The path itself if the sandbox user may read it, else a world-readable copy.

    Uploaded files are usually 0644, but private storage (the ground truth) may not be;
    the copy stays inside the worker's private work dir.
    """
    if path.stat().st_mode & stat.S_IROTH:
        return path
    shutil.copyfile(path, copy_to)
    copy_to.chmod(0o644)
    return copy_to
