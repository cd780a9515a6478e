"""The sandbox's contract: what services hand a SandboxRunner and what they get back.

Services receive a SandboxRunner: DockerRunner (scoring.sandbox_docker) in production,
FakeRunner (scoring.sandbox_fake) in tests. A runner runs a command in a locked-down
container with `mounts` (world-readable host paths, read-only by default) and an /output
folder, under SandboxLimits, and returns a RunResult; it raises SandboxError when the run
failed because of what it was given, and SandboxUnavailable when the container engine could
not be used (the caller retries later). Nothing here imports Django; limits and the image
come in as arguments.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SANDBOX_USER = "65534:65534"
OUTPUT_TARGET = "/output"


class SandboxError(Exception):
    """The sandboxed run failed because of what it was given; the message says why."""


class SandboxUnavailable(Exception):
    """The container engine could not be used; the caller should retry later."""


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int = 2 * 1024**3
    cpus: float = 1.0
    pids: int = 128
    timeout_s: float = 600
    tmpfs_bytes: int = 64 * 1024**2
    output_bytes: int = 64 * 1024**2
    log_bytes: int = 64 * 1024


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = True


@dataclass
class RunResult:
    exit_code: int | None
    timed_out: bool
    oom_killed: bool
    duration_s: float
    peak_memory_bytes: int | None
    log: str  # stdout and stderr, interleaved, cut to its tail past limits.log_bytes
    output_truncated: bool  # the run filled /output past limits.output_bytes
    image: str
    image_digest: str

    @property
    def ok(self) -> bool:
        return (
            self.exit_code == 0
            and not self.timed_out
            and not self.oom_killed
            and not self.output_truncated
        )

    def failure_reason(self, limits: SandboxLimits) -> str | None:
        """A sentence for the participant, or None when the run succeeded."""
        if self.oom_killed:
            return f"exceeded memory limit of {format_bytes(limits.memory_bytes)}"
        if self.timed_out:
            return f"exceeded time limit of {format_seconds(limits.timeout_s)}"
        if self.output_truncated:
            return f"exceeded the output limit of {format_bytes(limits.output_bytes)}"
        if self.exit_code is None:
            return "stopped without an exit code"
        if self.exit_code != 0:
            return f"exited with code {self.exit_code}: {last_lines(self.log)}"
        return None


class SandboxRunner(Protocol):
    def run(
        self,
        *,
        image: str,
        command: list[str],
        mounts: list[Mount],
        output_dir: Path,
        limits: SandboxLimits,
        labels: dict[str, str] | None = None,
    ) -> RunResult: ...


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


def format_seconds(s: float) -> str:
    return f"{s:g} s"


def last_lines(log: str, count: int = 5, max_chars: int = 500) -> str:
    lines = [line for line in log.splitlines() if line.strip()]
    text = "\n".join(lines[-count:])
    return text[-max_chars:] if text else "(no output)"


def check_readable_by_sandbox(mount: Mount) -> None:
    """The sandbox user owns nothing on the host: inputs must be world-readable."""
    mode = mount.source.stat().st_mode
    needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    if mode & needed != needed:
        raise ValueError(f"{mount.source} is not readable by the sandbox user (mode {mode:o})")
