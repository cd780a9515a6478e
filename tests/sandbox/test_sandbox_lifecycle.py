"""Containers come and go: removal after every run, stale leftovers, engine failures."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid

import docker.errors
import pytest

from scoring.sandbox import SandboxUnavailable
from scoring.sandbox_docker import DockerRunner
from scoring.sandbox_labels import (
    DEADLINE_LABEL,
    DEPLOYMENT_LABEL,
    OWNER_LABEL,
    SANDBOX_LABEL,
    STARTED_LABEL,
)
from tests.sandbox.conftest import SMALL_LIMITS


@pytest.mark.docker
@pytest.mark.parametrize("code", ["print('fine')", "raise SystemExit(3)"])
def test_it_removes_the_container_after_the_run(run_python, docker_client, code):
    result = run_python(code)

    assert result.exit_code in (0, 3)
    # This process's containers only: other runs may share the engine.
    mine = f"{OWNER_LABEL}={socket.gethostname()}:{os.getpid()}"
    leftovers = docker_client.containers.list(all=True, filters={"label": [SANDBOX_LABEL, mine]})
    assert leftovers == []


@pytest.mark.docker
def test_the_command_reads_an_empty_stdin_and_is_not_kept_waiting(run_python):
    # The sandbox's shell waits on its own stdin after the command; the command must not.
    result = run_python("import sys; print(repr(sys.stdin.read()))")

    assert result.ok
    assert result.log == "''\n"


@pytest.mark.docker
def test_a_container_stopped_from_outside_ends_the_run_at_once(run_python, docker_client):
    mine = {"label": [SANDBOX_LABEL, f"{OWNER_LABEL}={socket.gethostname()}:{os.getpid()}"]}

    def kill_it() -> None:
        for _ in range(100):
            running = docker_client.containers.list(filters=mine)
            if running:
                time.sleep(0.5)
                running[0].kill()
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_it)
    killer.start()
    started = time.monotonic()
    result = run_python("import time; time.sleep(30)")  # a 20 s time limit
    killer.join()

    assert time.monotonic() - started < 10
    assert not result.timed_out
    assert result.exit_code == 137
    assert result.failure_reason(SMALL_LIMITS).startswith("exited with code 137")


@pytest.mark.docker
def test_it_reports_the_image_digest_and_peak_memory(run_python, docker_client, scorer_image):
    result = run_python("bytearray(50 * 1024 * 1024)")

    assert result.ok
    assert result.image == scorer_image
    assert result.image_digest == docker_client.images.get(scorer_image).id
    assert 50 * 1024**2 < result.peak_memory_bytes < 200 * 1024**2


@pytest.mark.docker
def test_cleanup_stale_removes_a_leftover_of_a_dead_worker(docker_client, scorer_image):
    now = time.time()
    deployment = f"test-{uuid.uuid4().hex[:12]}"
    past_deadline = docker_client.containers.create(
        scorer_image,
        ["true"],
        network_mode="none",
        labels={
            SANDBOX_LABEL: "1",
            DEPLOYMENT_LABEL: deployment,
            STARTED_LABEL: f"{now - 700:.0f}",
            DEADLINE_LABEL: "0",
        },
    )
    still_running = docker_client.containers.run(
        scorer_image,
        ["sleep", "30"],
        network_mode="none",
        detach=True,
        labels={
            SANDBOX_LABEL: "1",
            DEPLOYMENT_LABEL: deployment,
            STARTED_LABEL: f"{now:.0f}",
            DEADLINE_LABEL: f"{now + 600:.0f}",
        },
    )
    try:
        removed = DockerRunner(docker_client, deployment=deployment).cleanup_stale()

        assert removed == 1
        remaining = {c.id for c in docker_client.containers.list(all=True)}
        assert past_deadline.id not in remaining
        assert still_running.id in remaining
    finally:
        still_running.remove(force=True)
        if past_deadline.id in [c.id for c in docker_client.containers.list(all=True)]:
            past_deadline.remove(force=True)


@pytest.mark.docker
def test_cleanup_stale_removes_an_old_orphaned_output_volume_only(docker_client):
    now = time.time()
    deployment = f"test-{uuid.uuid4().hex[:12]}"
    labels = {SANDBOX_LABEL: "1", DEPLOYMENT_LABEL: deployment}
    old = docker_client.volumes.create(
        labels={**labels, STARTED_LABEL: f"{now - 700:.0f}", DEADLINE_LABEL: f"{now - 100:.0f}"}
    )
    # Its container is about to be created: it must stay.
    new = docker_client.volumes.create(
        labels={**labels, STARTED_LABEL: f"{now:.0f}", DEADLINE_LABEL: f"{now + 600:.0f}"}
    )
    try:
        DockerRunner(docker_client, deployment=deployment).cleanup_stale()

        remaining = {v.name for v in docker_client.volumes.list(filters={"label": SANDBOX_LABEL})}
        assert old.name not in remaining
        assert new.name in remaining
    finally:
        for volume in (old, new):
            with contextlib.suppress(docker.errors.NotFound):
                volume.remove()


@pytest.mark.docker
def test_a_container_is_labelled_with_its_deployment_and_wall_clock_deadline(
    docker_client, scorer_image, tmp_path, small_limits
):
    runner = DockerRunner(docker_client, deployment="test-labels")
    seen: dict[str, str] = {}
    code = "import time; time.sleep(1)"
    before = time.time()
    thread = threading.Thread(
        target=runner.run,
        kwargs={
            "image": scorer_image,
            "command": ["python", "-c", code],
            "mounts": [],
            "output_dir": tmp_path / "output",
            "limits": small_limits,
        },
    )
    thread.start()
    mine = f"{OWNER_LABEL}={socket.gethostname()}:{os.getpid()}"
    while thread.is_alive() and not seen:
        for container in docker_client.containers.list(filters={"label": mine}):
            seen = container.labels
        time.sleep(0.05)
    thread.join()

    assert seen[DEPLOYMENT_LABEL] == "test-labels"
    deadline = float(seen[DEADLINE_LABEL])
    assert before + small_limits.timeout_s - 1 <= deadline <= time.time() + small_limits.timeout_s


@pytest.mark.docker
def test_a_missing_image_makes_the_sandbox_unavailable(runner, tmp_path, small_limits):
    with pytest.raises(SandboxUnavailable, match=r"build\.sh"):
        runner.run(
            image="heldout-scorer:no-such-tag",
            command=["true"],
            mounts=[],
            output_dir=tmp_path / "output",
            limits=small_limits,
        )


def test_an_unreachable_engine_makes_the_sandbox_unavailable(monkeypatch, tmp_path, small_limits):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")

    with pytest.raises(SandboxUnavailable, match="Docker engine"):
        DockerRunner().run(
            image="heldout-scorer:latest",
            command=["true"],
            mounts=[],
            output_dir=tmp_path / "output",
            limits=small_limits,
        )
