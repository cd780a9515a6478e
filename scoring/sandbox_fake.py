"""FakeRunner: a SandboxRunner that runs nothing, for service tests.

It records each call (FakeCall, which maps container paths to the host), runs a scripted
behaviour, and returns a scripted RunResult or a successful one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scoring.sandbox import OUTPUT_TARGET, Mount, RunResult, SandboxLimits


@dataclass
class FakeCall:
    image: str
    command: list[str]
    mounts: list[Mount]
    output_dir: Path
    limits: SandboxLimits
    labels: dict[str, str]

    def host_path(self, container_path: str) -> Path:
        """Where a path inside the fake container is on the host, e.g. "/input/spec.json"."""
        if container_path.startswith(OUTPUT_TARGET):
            return self.output_dir / container_path[len(OUTPUT_TARGET) :].lstrip("/")
        for mount in self.mounts:
            if container_path == mount.target:
                return mount.source
            if container_path.startswith(mount.target.rstrip("/") + "/"):
                return mount.source / container_path[len(mount.target) :].lstrip("/")
        raise KeyError(f"{container_path} is not mounted")


@dataclass
class FakeRunner:
    """A SandboxRunner for service tests.

    Records each call; runs `behaviour` (e.g. to write result files into the output dir);
    raises `error` if set; returns `result`, or a successful run if none was scripted.
    """

    result: RunResult | None = None
    behaviour: Callable[[FakeCall], object] | None = None
    error: Exception | None = None
    calls: list[FakeCall] = field(default_factory=list)

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
        call = FakeCall(image, list(command), list(mounts), output_dir, limits, dict(labels or {}))
        self.calls.append(call)
        output_dir.mkdir(parents=True, exist_ok=True)
        if self.error is not None:
            raise self.error
        if self.behaviour is not None:
            self.behaviour(call)
        if self.result is not None:
            return self.result
        return RunResult(
            exit_code=0,
            timed_out=False,
            oom_killed=False,
            duration_s=0.0,
            peak_memory_bytes=None,
            log="",
            output_truncated=False,
            image=image,
            image_digest="sha256:fake",
        )
