"""Fixtures for the sandbox tests, which run real containers.

Tests marked `docker` fail (never skip) when no engine answers or the scorer image is
missing: CI must have run deploy/dockerd.sh and deploy/scorer-image/build.sh first.
The image is HELDOUT_SCORER_IMAGE, or heldout-scorer:latest.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from scoring.sandbox import Mount, RunResult, SandboxLimits
from scoring.sandbox_docker import DockerRunner
from scoring.sandbox_labels import OWNER_LABEL, SANDBOX_LABEL

SMALL_LIMITS = SandboxLimits(
    memory_bytes=256 * 1024**2,
    cpus=1.0,
    pids=64,
    timeout_s=20,
    tmpfs_bytes=16 * 1024**2,
    output_bytes=1024**2,
    log_bytes=4 * 1024,
)


@pytest.fixture(scope="session")
def runner(docker_client: docker.DockerClient) -> DockerRunner:
    return DockerRunner(docker_client)


@pytest.fixture(autouse=True)
def no_sandbox_container_is_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every run removes its container and volume, whatever happened in it."""
    yield
    if request.node.get_closest_marker("docker") is None:
        return
    client = request.getfixturevalue("docker_client")
    # The warm scorers this process's default runner keeps go as a worker's do when it stops.
    from competitions.sandboxes import sandbox_runner_close

    sandbox_runner_close()
    # Only this process's containers: other test runs or workers may share the engine.
    mine = f"{OWNER_LABEL}={socket.gethostname()}:{os.getpid()}"
    left = client.containers.list(all=True, filters={"label": [SANDBOX_LABEL, mine]})
    assert left == [], f"sandbox containers left behind: {[c.name for c in left]}"
    # Nor the /output volumes that went with them.
    volumes = client.volumes.list(filters={"label": [SANDBOX_LABEL, mine]})
    assert volumes == [], f"sandbox volumes left behind: {[v.name for v in volumes]}"


@pytest.fixture
def small_limits() -> SandboxLimits:
    return SMALL_LIMITS


@pytest.fixture
def run_python(runner: DockerRunner, scorer_image: str, tmp_path: Path):
    """Runs `python -c code` in the sandbox; returns the RunResult."""

    def run(
        code: str,
        *,
        limits: SandboxLimits = SMALL_LIMITS,
        mounts: list[Mount] | None = None,
        output_dir: Path | None = None,
    ) -> RunResult:
        return runner.run(
            image=scorer_image,
            command=["python", "-c", code],
            mounts=mounts or [],
            output_dir=output_dir or tmp_path / "output",
            limits=limits,
        )

    return run
