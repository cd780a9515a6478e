"""Run a command in a locked-down container and report what happened.

DockerRunner: the SandboxRunner (scoring.sandbox) of production, on a Docker engine.
Nothing here imports Django; limits and the image come in as arguments.

Every DockerRunner container has no network (network_mode="none"), a read-only root, a
size-capped /tmp and /output (tmpfs owned by the sandbox user: the kernel enforces the
sizes, whatever the image's folders or the worker's uid; see scoring.sandbox_output), no
capabilities, no-new-privileges, the platform's seccomp profile (deploy/seccomp: Docker's
default without ptrace and other kernel attack surface), the nobody user (65534), fixed
memory (no swap), CPU and process limits, and a per-file size cap. The wall-clock limit is
enforced by killing the container, and the container and its volume are always removed.

The command runs under the shell wrapper of scoring.sandbox_log, which keeps the container
alive until the runner has frozen it and copied /output out. Every container carries the
labels of scoring.sandbox_labels, so that `cleanup_stale`, run on every worker host, can
kill what a dead worker left running without touching another deployment's containers.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import socket
import tarfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container
from docker.types import DriverConfig, LogConfig, Ulimit
from docker.types import Mount as DockerMount

from scoring.image_identity import DIGEST_REFERENCE, SCORER_CONTENT_LABEL, scorer_identity_of
from scoring.sandbox import (
    OUTPUT_TARGET,
    SANDBOX_USER,
    Mount,
    RunResult,
    SandboxLimits,
    SandboxUnavailable,
    check_readable_by_sandbox,
)
from scoring.sandbox_labels import (
    DEADLINE_LABEL,
    DEPLOYMENT_LABEL,
    DEPLOYMENT_PATTERN,
    OWNER_LABEL,
    SANDBOX_LABEL,
    STALE_GRACE_S,
    STARTED_LABEL,
    _is_stale,
)
from scoring.sandbox_log import _WRAPPER, LogTail
from scoring.sandbox_output import copy_output, output_volume_options, tmpfs_options

# The seccomp profile every container runs under (deploy/seccomp/generate.py writes it).
SECCOMP_PROFILE = Path(__file__).resolve().parent.parent / "deploy" / "seccomp" / "heldout.json"


class DockerRunner:
    """SandboxRunner on a Docker engine, through the docker SDK.

    The client is made on first use, so building a runner never needs the engine.
    `deployment` labels every container; only a runner with one may clean up.
    """

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        deployment: str = "",
    ):
        if deployment and not re.fullmatch(DEPLOYMENT_PATTERN, deployment):
            raise ValueError(f"{deployment!r} is not a deployment id")
        self._client = client
        self.deployment = deployment

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            with _engine_errors():
                self._client = docker.from_env()
        return self._client

    def image_digest(self, image: str) -> str:
        """The image's content id (sha256:...), recorded with every score."""
        with _engine_errors(image):
            return str(self._image(image).id)

    def scorer_identity(self, image: str) -> str:
        """The scorer's identity (scorer_identity_of): equal on every host for the same
        scorer, unlike the local image id."""
        with _engine_errors(image):
            return scorer_identity_of(self._image(image).attrs, reference=image)

    def scorer_aliases(self, image: str) -> list[str]:
        """For an image run by registry digest, its content label (when it has one): the
        identity versions recorded while workers ran local builds of the same inputs."""
        if not DIGEST_REFERENCE.fullmatch(image):
            return []
        with _engine_errors(image):
            labels = (self._image(image).attrs.get("Config") or {}).get("Labels") or {}
        label = labels.get(SCORER_CONTENT_LABEL)
        return [str(label)] if label else []

    def _image(self, image: str) -> Any:
        """The engine's image `image`; a digest reference missing here is pulled first (once:
        the engine keeps it). A registry that fails makes SandboxUnavailable, retried later."""
        try:
            return self.client.images.get(image)
        except docker.errors.ImageNotFound:
            if not DIGEST_REFERENCE.fullmatch(image):
                raise
        try:
            return self.client.images.pull(image)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise SandboxUnavailable(f"could not pull {image} from its registry: {exc}") from exc

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
        for mount in mounts:
            _check_mount(mount)
        _prepare_output_dir(output_dir)
        labels = {**(labels or {}), **self.own_labels()}
        with _engine_errors(image):
            digest = str(self._image(image).id)
            container = self.client.containers.create(
                **_create_args(image, command, mounts, limits, labels)
            )
            try:
                return self._run_created(container, image, digest, output_dir, limits)
            finally:
                # v=True: the anonymous /output volume goes with it.
                container.remove(force=True, v=True)

    def own_labels(self) -> dict[str, str]:
        """The labels that mark a container as this deployment's."""
        return {DEPLOYMENT_LABEL: self.deployment} if self.deployment else {}

    def cleanup_stale(self, *, grace_s: float = STALE_GRACE_S) -> int:
        """Kill and remove this deployment's sandbox containers left by a dead worker, and
        their /output volumes. Returns how many containers went.

        A container is stale once `grace_s` past its deadline label (its own worker kills
        it at the deadline), or when it is not running and older than `grace_s`: a live
        worker removes its containers within seconds of their exit. Containers of other
        deployments, and unlabelled ones, are never touched.
        """
        if not self.deployment:
            raise ValueError("only a runner with a deployment id may clean up")
        now = time.time()
        removed = 0
        mine = [SANDBOX_LABEL, f"{DEPLOYMENT_LABEL}={self.deployment}"]
        with _engine_errors():
            found = self.client.containers.list(all=True, filters={"label": mine})
            for container in found:
                if not _is_stale(container.labels, container.status, now, grace_s):
                    continue
                try:
                    container.remove(force=True, v=True)
                    removed += 1
                except docker.errors.NotFound:
                    pass  # its own worker removed it meanwhile
            self._remove_orphan_volumes(mine, now, grace_s)
        return removed

    def _remove_orphan_volumes(self, mine: list[str], now: float, grace_s: float) -> None:
        """/output volumes no container uses any more (their container was removed without
        them, or the engine stopped mid-removal). Past the grace only: a volume is made a
        moment before its container is."""
        orphans = self.client.volumes.list(filters={"label": mine, "dangling": True})
        for volume in orphans:
            if _is_stale(volume.attrs.get("Labels") or {}, "exited", now, grace_s):
                with suppress(docker.errors.NotFound, docker.errors.APIError):
                    volume.remove()

    def _run_created(
        self, container: Container, image: str, digest: str, output_dir: Path, limits: SandboxLimits
    ) -> RunResult:
        tail = LogTail(limits.log_bytes)
        # Attached before the start so no output is missed; read as it comes, so only the
        # tail is ever held in memory and the engine stores nothing (log driver "none").
        stream = container.attach(stdout=True, stderr=True, stream=True, logs=False)
        reader = threading.Thread(target=_drain, args=(stream, tail), daemon=True)
        reader.start()
        started = time.monotonic()
        container.start()
        timed_out = not tail.ended.wait(timeout=limits.timeout_s)
        duration = time.monotonic() - started
        too_much_output = False
        if timed_out:
            _kill(container)
        elif tail.exit_status is not None:
            # The command is over and the wrapper waits: freeze what is left (background
            # processes) so /output holds still while it is copied.
            with suppress(docker.errors.APIError):  # the wrapper was gone already
                container.pause()
            too_much_output = self._copy_output(container, output_dir, limits)
        else:
            container.wait(timeout=30)  # stopped without reporting: killed, or no shell
        container.reload()
        state = container.attrs["State"]
        reader.join(timeout=0 if tail.exit_status is not None else 5)
        log, peak = tail.finish()
        oom_killed = bool(state["OOMKilled"]) or bool(tail.oom_kills)
        if peak is None and oom_killed:
            peak = limits.memory_bytes  # the cgroup reached its limit: that was the peak
        exit_code = tail.exit_status if tail.exit_status is not None else state["ExitCode"]
        stream.close()
        return RunResult(
            exit_code=exit_code,
            timed_out=timed_out,
            oom_killed=oom_killed,
            duration_s=duration,
            peak_memory_bytes=peak,
            log=log,
            output_truncated=too_much_output,
            image=image,
            image_digest=digest,
        )

    def _copy_output(self, container: Container, output_dir: Path, limits: SandboxLimits) -> bool:
        """Copy /output out of the (frozen) container; True when it is over the limit."""
        chunks, _stat = container.get_archive(OUTPUT_TARGET)
        try:
            return copy_output(chunks, output_dir, limits.output_bytes)
        except tarfile.TarError as exc:
            raise SandboxUnavailable(
                "the Docker engine sent an unreadable copy of /output"
            ) from exc


@functools.cache
def seccomp_profile() -> str:
    """The seccomp profile's JSON (the engine wants the content, not a path). A missing
    profile is an error: the runner never falls back to a weaker sandbox."""
    try:
        text = SECCOMP_PROFILE.read_text(encoding="utf-8")
    except OSError as exc:
        raise SandboxUnavailable(
            "the seccomp profile deploy/seccomp/heldout.json is missing"
            " (deploy/seccomp/generate.py writes it)"
        ) from exc
    return json.dumps(json.loads(text), separators=(",", ":"))


def _create_args(
    image: str,
    command: list[str],
    mounts: list[Mount],
    limits: SandboxLimits,
    labels: dict[str, str],
    *,
    wrapped: bool = True,
    lifetime_s: float | None = None,
    output_room: int = 0,
) -> dict[str, Any]:
    """The engine's arguments for a sandbox container. A warm scorer (scoring.warm) runs
    its server unwrapped, lives up to `lifetime_s` rather than one time limit, and has
    `output_room` more bytes in /output for its runs' logs."""
    now = time.time()
    threads = str(max(1, math.ceil(limits.cpus)))
    labels = {
        **labels,
        SANDBOX_LABEL: "1",
        OWNER_LABEL: f"{socket.gethostname()}:{os.getpid()}",
        STARTED_LABEL: f"{now:.0f}",
        # Set at creation, a moment before the start, so never later than the kill.
        DEADLINE_LABEL: f"{now + (lifetime_s or limits.timeout_s):.0f}",
    }
    output_bytes = limits.output_bytes + output_room
    return {
        "image": image,
        "command": ["/bin/sh", "-c", _WRAPPER, "sandbox", *command] if wrapped else command,
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,{tmpfs_options(limits.tmpfs_bytes)}"},
        "user": SANDBOX_USER,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges", f"seccomp={seccomp_profile()}"],
        # Open and never written: the wrapper waits on it once the command is over.
        "stdin_open": True,
        "mem_limit": limits.memory_bytes,
        "memswap_limit": limits.memory_bytes,  # equal: no swap
        "nano_cpus": int(limits.cpus * 1e9),
        "pids_limit": limits.pids,
        # One byte over the output limit per file, so a file that hit the cap is
        # recognisably over it; also bounds files in /tmp.
        "ulimits": [
            Ulimit(name="fsize", soft=limits.output_bytes + 1, hard=limits.output_bytes + 1),
            Ulimit(name="core", soft=0, hard=0),
        ],
        "mounts": [
            # An anonymous tmpfs volume: unlike a `tmpfs` mount it is visible to the
            # archive API, so it can be copied out after the command; and unlike a host
            # folder it is capped by the kernel and the sandbox cannot leave files the
            # worker cannot delete.
            DockerMount(
                OUTPUT_TARGET,
                None,
                type="volume",
                no_copy=True,
                driver_config=DriverConfig("local", output_volume_options(output_bytes)),
                labels=labels,
            ),
            *(
                DockerMount(m.target, str(m.source.resolve()), type="bind", read_only=m.read_only)
                for m in mounts
            ),
        ],
        "labels": labels,
        "log_config": LogConfig(type="none"),
        "environment": {
            "HOME": "/tmp",
            # Match the CPU quota: more threads than cores only thrash under the quota.
            "OMP_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
        },
        "working_dir": "/tmp",
        "hostname": "sandbox",
        "ipc_mode": "private",
    }


def _check_mount(mount: Mount) -> None:
    if not mount.target.startswith("/") or mount.target.rstrip("/") in ("", OUTPUT_TARGET):
        raise ValueError(f"cannot mount at {mount.target!r}")
    if not mount.source.exists():
        raise ValueError(f"{mount.source} does not exist")
    check_readable_by_sandbox(mount)


def _prepare_output_dir(output_dir: Path) -> None:
    # Only the worker writes here (copy_output): the sandbox never sees this folder.
    output_dir.mkdir(parents=True, exist_ok=True)


def _drain(stream: Iterable[bytes], tail: LogTail) -> None:
    try:
        for chunk in stream:
            tail.feed(chunk)
    except (OSError, requests.exceptions.RequestException):
        pass  # the stream was closed under us after a kill; what we have is the log
    finally:
        tail.ended.set()  # the container stopped (or the engine went) without a report


def _kill(container: Container) -> None:
    with suppress(docker.errors.APIError):  # it exited by itself in the meantime
        container.kill()
    container.wait(timeout=30)


@contextmanager
def _engine_errors(image: str | None = None) -> Iterator[None]:
    """Turn the engine's failures into SandboxUnavailable, which the caller retries."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise SandboxUnavailable(
            f"image {image} is not on this Docker engine (deploy/scorer-image/build.sh makes it)"
        ) from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxUnavailable(f"the Docker engine failed: {exc}") from exc
