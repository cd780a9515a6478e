"""Run a command in a locked-down container and report what happened.

Services receive a SandboxRunner: DockerRunner in production, FakeRunner in tests. Nothing
here imports Django; limits and the image come in as arguments.

Every DockerRunner container has no network (network_mode="none"), a read-only root, a
size-capped /tmp, no capabilities, no-new-privileges, the nobody user (65534), fixed
memory (no swap), CPU and process limits, and a per-file size cap. The wall-clock limit is
enforced by killing the container, and the container is always removed.

Every container is labelled with its deployment (DEPLOYMENT_LABEL, when the runner has one)
and its absolute wall-clock deadline (DEADLINE_LABEL: creation time plus the time limit),
so that `cleanup_stale`, run on every worker host, can kill what a dead worker left running
without touching another deployment's containers on a shared engine.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container
from docker.types import LogConfig, Ulimit
from docker.types import Mount as DockerMount

SANDBOX_LABEL = "heldout.sandbox"
# Seconds since the epoch at which the run's time limit ends.
DEADLINE_LABEL = "heldout.sandbox.deadline"
# Which deployment (HELDOUT_DEPLOYMENT_ID) made the container or image.
DEPLOYMENT_LABEL = "heldout.deployment"
# The process that started the container: lets tests (and people) tell whose it is when
# several workers share one engine.
OWNER_LABEL = "heldout.sandbox.owner"
STARTED_LABEL = "heldout.sandbox.started"
# Set by deploy/scorer-image/build.sh: a sha256 over everything the image was built from.
SCORER_CONTENT_LABEL = "org.heldout.scorer.content"
# The parts of an image's config that change what a run does (scorer_identity_of).
_BEHAVIOUR_FIELDS = ("Env", "Cmd", "Entrypoint", "User", "WorkingDir")
SANDBOX_USER = "65534:65534"
OUTPUT_TARGET = "/output"
# A container left past its time limit by this much belongs to a dead worker.
STALE_GRACE_S = 60.0
# What a deployment id may be: it goes into labels and image repository names.
DEPLOYMENT_PATTERN = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
# An image named by its registry digest, repo@sha256:<64 hex>: the same bytes on every host.
DIGEST_REFERENCE = re.compile(r"(?P<repository>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})")
_PEAK_MARKER = b"heldout-sandbox-peak-memory-bytes="
# Runs the command as a child of a shell, then prints the cgroup's memory high-water mark
# (cgroup v2 memory.peak or v1 max_usage_in_bytes) on stderr. The engine's stats API
# cannot give this: it only samples a running container, and short runs end between
# samples. The figure is informational; nothing is decided on it.
_WRAPPER = f"""
"$@"
status=$?
for f in /sys/fs/cgroup/memory.peak /sys/fs/cgroup/memory/memory.max_usage_in_bytes; do
    # The shell's own `read`: slim images may have no cat.
    if [ -r "$f" ] && read -r peak < "$f"; then echo "{_PEAK_MARKER.decode()}$peak" >&2; break; fi
done
exit $status
"""


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
    output_truncated: bool  # the run wrote more than limits.output_bytes
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
            return f"wrote more than {format_bytes(limits.output_bytes)} of output"
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


class LogTail:
    """Keeps the last `limit` bytes of a stream and counts everything that went by."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        # Room for the peak-memory line, which comes after the command's own output.
        self._keep = limit + 256
        self._tail = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._tail += chunk
        if len(self._tail) > self._keep:
            del self._tail[: len(self._tail) - self._keep]

    def finish(self) -> tuple[str, int | None]:
        """The log text (with a note if it was cut) and the peak memory it reported."""
        data = bytes(self._tail)
        total = self.total
        peak = None
        start = data.rfind(_PEAK_MARKER)
        if start != -1:
            end = data.find(b"\n", start)
            end = len(data) if end == -1 else end
            digits = data[start + len(_PEAK_MARKER) : end].strip()
            peak = int(digits) if digits.isdigit() else None
            data = data[:start] + data[end + 1 :]
            total -= len(self._tail) - len(data)
        if total <= self.limit:
            return data[-self.limit :].decode(errors="replace"), peak
        cut = total - self.limit
        text = data[-self.limit :].decode(errors="replace")
        return f"[log truncated: {cut} earlier bytes not kept]\n{text}", peak


def output_size(directory: Path) -> int:
    """Bytes in regular files under directory, not following symlinks."""
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            info = os.lstat(os.path.join(root, name))
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


def sanitise_output(directory: Path) -> None:
    """Make what the sandbox wrote safe for the host to read and keep.

    Symlinks, fifos and devices are deleted: the host must never follow a link the sandbox
    made to one of its own files. Setuid and setgid bits are cleared.
    """
    for root, dirs, files in os.walk(directory):
        for name in [*files, *dirs]:
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                os.unlink(path)
            elif mode & (stat.S_ISUID | stat.S_ISGID):
                os.chmod(path, stat.S_IMODE(mode) & ~(stat.S_ISUID | stat.S_ISGID))


def check_readable_by_sandbox(mount: Mount) -> None:
    """The sandbox user owns nothing on the host: inputs must be world-readable."""
    mode = mount.source.stat().st_mode
    needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    if mode & needed != needed:
        raise ValueError(f"{mount.source} is not readable by the sandbox user (mode {mode:o})")


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
        poll_s: float = 0.5,
    ):
        if deployment and not re.fullmatch(DEPLOYMENT_PATTERN, deployment):
            raise ValueError(f"{deployment!r} is not a deployment id")
        self._client = client
        self.deployment = deployment
        # How often the output folder is measured while the container runs. Completion is
        # noticed at once whatever this is, and the time limit is met to the millisecond.
        self.poll_s = poll_s

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
                **_create_args(image, command, mounts, output_dir, limits, labels)
            )
            try:
                return self._run_created(container, image, digest, output_dir, limits)
            finally:
                container.remove(force=True)

    def own_labels(self) -> dict[str, str]:
        """The labels that mark a container as this deployment's."""
        return {DEPLOYMENT_LABEL: self.deployment} if self.deployment else {}

    def cleanup_stale(self, *, grace_s: float = STALE_GRACE_S) -> int:
        """Kill and remove this deployment's sandbox containers left by a dead worker.
        Returns how many went.

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
                    container.remove(force=True)
                    removed += 1
                except docker.errors.NotFound:
                    pass  # its own worker removed it meanwhile
        return removed

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
        timed_out, too_much_output = self._wait(container, started, output_dir, limits)
        duration = time.monotonic() - started
        reader.join(timeout=5)
        stream.close()
        container.reload()
        state = container.attrs["State"]
        sanitise_output(output_dir)
        too_much_output = too_much_output or output_size(output_dir) > limits.output_bytes
        log, peak = tail.finish()
        if peak is None and state["OOMKilled"]:
            peak = limits.memory_bytes  # the cgroup reached its limit: that was the peak
        return RunResult(
            exit_code=state["ExitCode"],
            timed_out=timed_out,
            oom_killed=bool(state["OOMKilled"]),
            duration_s=duration,
            peak_memory_bytes=peak,
            log=log,
            output_truncated=too_much_output,
            image=image,
            image_digest=digest,
        )

    def _wait(
        self, container: Container, started: float, output_dir: Path, limits: SandboxLimits
    ) -> tuple[bool, bool]:
        """Wait for the exit, killing at the time limit or on too much output.

        Returns (timed_out, too_much_output).
        """
        deadline = started + limits.timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(container)
                return True, False
            try:
                container.wait(timeout=min(remaining, self.poll_s))
                return False, False
            except (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout):
                # Still running. (On the engine's unix socket the SDK reports a read
                # timeout as a ConnectionError; a real connection failure fails the ping.)
                self.client.ping()
            if output_size(output_dir) > limits.output_bytes:
                _kill(container)
                return False, True


def scorer_identity_of(attrs: Mapping[str, Any], *, reference: str = "") -> str:
    """A scorer image's identity from its `docker image inspect` attributes: the same on
    every host for the same scorer, never the local image id (each build of the same
    inputs gets its own id, since the build stamps the time).

    An image run by its registry digest (`reference` is repo@sha256:...) is that digest:
    every host pulls those very bytes. Otherwise, in order: the content digest the
    platform's build records as a label; else the registry digest (the image was pulled);
    else a sha256 over the filesystem layers' diff ids and the config fields that change
    behaviour. docs/scorers.md says why the first two never disagree across hosts.
    """
    pinned = DIGEST_REFERENCE.fullmatch(reference)
    if pinned:
        return pinned.group("digest")
    config = attrs.get("Config") or {}
    label = (config.get("Labels") or {}).get(SCORER_CONTENT_LABEL)
    if label:
        return str(label)
    repo_digests = sorted(attrs.get("RepoDigests") or [])
    if repo_digests:
        return repo_digests[0].rpartition("@")[2]
    content = {
        "layers": list((attrs.get("RootFS") or {}).get("Layers") or []),
        **{name: config.get(name) for name in _BEHAVIOUR_FIELDS},
    }
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def _create_args(
    image: str,
    command: list[str],
    mounts: list[Mount],
    output_dir: Path,
    limits: SandboxLimits,
    labels: dict[str, str],
) -> dict[str, Any]:
    now = time.time()
    threads = str(max(1, math.ceil(limits.cpus)))
    return {
        "image": image,
        "command": ["/bin/sh", "-c", _WRAPPER, "sandbox", *command],
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={limits.tmpfs_bytes},mode=1777"},
        "user": SANDBOX_USER,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
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
            DockerMount(OUTPUT_TARGET, str(output_dir.resolve()), type="bind", read_only=False),
            *(
                DockerMount(m.target, str(m.source.resolve()), type="bind", read_only=m.read_only)
                for m in mounts
            ),
        ],
        "labels": {
            **labels,
            SANDBOX_LABEL: "1",
            OWNER_LABEL: f"{socket.gethostname()}:{os.getpid()}",
            STARTED_LABEL: f"{now:.0f}",
            # Set at creation, a moment before the start, so never later than the kill.
            DEADLINE_LABEL: f"{now + limits.timeout_s:.0f}",
        },
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
    # The sandbox user (65534) owns nothing on the host. A world-writable folder is the
    # one way it can write here without the worker being root; keep the folder inside a
    # private (0700) work dir so nobody else on the host can reach it.
    output_dir.mkdir(parents=True, exist_ok=True)
    output_dir.chmod(0o777)


def _drain(stream: Iterable[bytes], tail: LogTail) -> None:
    try:
        for chunk in stream:
            tail.feed(chunk)
    except (OSError, requests.exceptions.RequestException):
        pass  # the stream was closed under us after a kill; what we have is the log


def _kill(container: Container) -> None:
    with suppress(docker.errors.APIError):  # it exited by itself in the meantime
        container.kill()
    container.wait(timeout=30)


def _is_stale(labels: dict[str, str], status: str, now: float, grace_s: float) -> bool:
    deadline = _float_label(labels, DEADLINE_LABEL)
    started = _float_label(labels, STARTED_LABEL)
    if deadline is not None and now > deadline + grace_s:
        return True
    return status != "running" and (started is None or now - started > grace_s)


def _float_label(labels: dict[str, str], name: str) -> float | None:
    try:
        return float(labels[name])
    except (KeyError, ValueError):
        return None


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
