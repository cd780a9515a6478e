"""Sandbox runs as they happen: a SandboxRunner that keeps each run's result, so the caller can
record it (judging saves them as SandboxRun rows; a scoring program's dry run shows the log).

Labels on every container say whose submission it ran (SUBMISSION_LABEL) and which stage
(STAGE_LABEL: "inference" or, unlabelled, "scoring").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from scoring.sandbox import Mount, RunResult, SandboxLimits, SandboxRunner

SUBMISSION_LABEL = "heldout.submission"
STAGE_LABEL = "heldout.stage"
SCORING_STAGE = "scoring"


@dataclasses.dataclass
class RecordedRun:
    stage: str
    result: RunResult
    limits: SandboxLimits


class RecordingRunner:
    """A SandboxRunner that keeps each run's result, to be saved as a SandboxRun.

    Its labels go on every container, so a leftover found on an engine says whose it was;
    a run labelled heldout.stage=inference is recorded as the inference stage.
    """

    def __init__(self, runner: SandboxRunner, labels: dict[str, str] | None = None) -> None:
        self.runner = runner
        self.labels = labels or {}
        self.runs: list[RecordedRun] = []

    def run(
        self,
        *,
        image: str,
        command: list[str],
        mounts: list[Mount],
        output_dir: Path,
        limits: SandboxLimits,
        labels: dict[str, str] | None = None,
    ) -> RunResult:
        labels = {**(labels or {}), **self.labels}
        result = self.runner.run(
            image=image,
            command=command,
            mounts=mounts,
            output_dir=output_dir,
            limits=limits,
            labels=labels,
        )
        self.runs.append(RecordedRun(labels.get(STAGE_LABEL, SCORING_STAGE), result, limits))
        return result
