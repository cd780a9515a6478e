"""Scorers: run validation and scoring somewhere and say how it went.

Every scorer returns a ScoringOutcome, so callers need not know whether the work ran in
this process or in a sandboxed container.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from scoring.evaluate import Evaluation, evaluate, load_truth
from scoring.spec import TaskSpec


@dataclass
class ScoringOutcome:
    evaluation: Evaluation
    duration_s: float
    peak_memory_bytes: int | None = None
    scorer_name: str = ""
    scorer_image: str = ""  # "reference@local image id" for Docker scorers
    # "in-process" or the image's scoring.image_identity.scorer_identity_of; "" when unknown
    scorer_identity: str = ""
    log: str = ""


class Scorer(Protocol):
    name: str

    def score(
        self, *, predictions_path: Path, truth_path: Path, spec: TaskSpec, workdir: Path
    ) -> ScoringOutcome: ...


class InProcessScorer:
    """Scores in the calling process: for tests, development and trusted set-ups."""

    name = "in-process"

    def __init__(self, max_problems: int = 100) -> None:
        self.max_problems = max_problems

    def score(
        self, *, predictions_path: Path, truth_path: Path, spec: TaskSpec, workdir: Path
    ) -> ScoringOutcome:
        memory = _PeakMemory()
        started = time.perf_counter()
        truth = load_truth(truth_path, spec)
        evaluation = evaluate(
            predictions_path=predictions_path,
            truth=truth,
            spec=spec,
            max_problems=self.max_problems,
        )
        return ScoringOutcome(
            evaluation=evaluation,
            duration_s=time.perf_counter() - started,
            peak_memory_bytes=memory.growth(),
            scorer_name=self.name,
        )


class _PeakMemory:
    """How far the process's peak resident memory rose above its size at the start.

    On Linux the peak is reset first (/proc/self/clear_refs), so an earlier, larger peak
    does not hide this one; elsewhere it falls back to the growth of ru_maxrss, which is 0
    when an earlier peak was higher.
    """

    def __init__(self) -> None:
        self._start_rss = self._reset_and_read("VmRSS")
        self._start_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def growth(self) -> int | None:
        if self._start_rss is not None:
            peak = self._read_status("VmHWM")
            if peak is not None:
                return max(peak - self._start_rss, 0)
        # ru_maxrss is in kilobytes on Linux.
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return max(maxrss - self._start_maxrss, 0) * 1024

    def _reset_and_read(self, field: str) -> int | None:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            return None
        return self._read_status(field)

    @staticmethod
    def _read_status(field: str) -> int | None:
        try:
            status = Path("/proc/self/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        return None
