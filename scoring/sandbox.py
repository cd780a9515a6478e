"""Run a command in a locked-down container and report what happened.

Services receive a SandboxRunner: DockerRunner in production, FakeRunner in tests. Nothing
here imports Django; limits and the image come in as arguments.

Every DockerRunner container has no network (network_mode="none"), a read-only root, a
size-capped /tmp and /output (tmpfs owned by the sandbox user: the kernel enforces the
sizes, whatever the image's folders or the worker's uid; see scoring.sandbox_output), no
capabilities, no-new-privileges, the platform's seccomp profile (deploy/seccomp: Docker's
default without ptrace and other kernel attack surface), the nobody user (65534), fixed
memory (no swap), CPU and process limits, and a per-file size cap. The wall-clock limit is
enforced by killing the container, and the container and its volume are always removed.

The command runs under a small shell wrapper that, when the command ends, reports its exit
status, peak memory and OOM kills on stderr and then waits on stdin: the container (and so
its /output tmpfs) stays alive until the runner has frozen it and copied /output out.

Every container is labelled with its deployment (DEPLOYMENT_LABEL, when the runner has one)
and its absolute wall-clock deadline (DEADLINE_LABEL: creation time plus the time limit),
so that `cleanup_stale`, run on every worker host, can kill what a dead worker left running
without touching another deployment's containers on a shared engine.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import socket
import stat
import tarfile
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
from docker.types import DriverConfig, LogConfig, Ulimit
from docker.types import Mount as DockerMount

from scoring.sandbox_output import copy_output, output_volume_options, tmpfs_options

SANDBOX_LABEL = "heldout.sandbox"
# Seconds since the epoch at which the run's time limit ends.
DEADLINE_LABEL = "heldout.sandbox.deadline"
# Which deployment (HELDOUT_DEPLOYMENT_ID) made the container or image.
DEPLOYMENT_LABEL = "heldout.deployment"
# The process that started the container: lets tests (and people) tell whose it is when
# several workers share one engine.
OWNER_LABEL = "heldout.sandbox.owner"
STARTED_LABEL = "heldout.sandbox.started"
# On a warm scorer (scoring.warm): its owner process's start time (process_started), so
# that a clean-up on the owner's host knows it is gone even when its pid was reused.
WARM_LABEL = "heldout.sandbox.warm"
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
_OOM_MARKER = b"heldout-sandbox-oom-kills="
_EXIT_MARKER = b"heldout-sandbox-exit="
# The seccomp profile every container runs under (deploy/seccomp/generate.py writes it).
SECCOMP_PROFILE = Path(__file__).resolve().parent.parent / "deploy" / "seccomp" / "heldout.json"
# Runs the command as a child of a shell, then prints on stderr the cgroup's memory
# high-water mark (cgroup v2 memory.peak or v1 max_usage_in_bytes: the engine's stats API
# only samples a running container, and short runs end between samples), its OOM kills
# (v2 memory.events, v1 memory.oom_control) and the command's exit status; then it waits
# on stdin, which stays open and is never written, so /output lives until the runner has
# copied it (the command itself reads an empty stdin). Only the shell's builtins: slim
# images may have no cat.
_WRAPPER = f"""
"$@" < /dev/null
status=$?
for f in /sys/fs/cgroup/memory.peak /sys/fs/cgroup/memory/memory.max_usage_in_bytes; do
    if [ -r "$f" ] && read -r peak < "$f"; then echo "{_PEAK_MARKER.decode()}$peak" >&2; break; fi
done
for f in /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control; do
    if [ -r "$f" ]; then
        while read -r key value; do
            [ "$key" = oom_kill ] && echo "{_OOM_MARKER.decode()}$value" >&2
        done < "$f"
        break
    fi
done
echo "{_EXIT_MARKER.decode()}$status" >&2
read -r _ignored
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


class LogTail:
    """Keeps the last `limit` bytes of a stream and counts everything that went by.

    `ended` is set when the wrapper reports the command's exit status (`exit_status`), or
    when the stream ends (the container stopped without one).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        # Room for the wrapper's lines, which come after the command's own output.
        self._keep = limit + 512
        self._tail = bytearray()
        self.ended = threading.Event()
        self.exit_status: int | None = None
        self.oom_kills: int | None = None

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._tail += chunk
        if len(self._tail) > self._keep:
            del self._tail[: len(self._tail) - self._keep]
        if self.exit_status is None:
            # The marker line may have started in the previous chunk.
            window = bytes(self._tail[-(len(chunk) + len(_EXIT_MARKER) + 16) :])
            _rest, status = _take_marker(window, _EXIT_MARKER, complete=True)
            if status is not None:
                self.exit_status = status
                self.ended.set()

    def finish(self) -> tuple[str, int | None]:
        """The log text (with a note if it was cut) and the peak memory it reported."""
        data = bytes(self._tail)
        data, peak = _take_marker(data, _PEAK_MARKER)
        data, self.oom_kills = _take_marker(data, _OOM_MARKER)
        data, _status = _take_marker(data, _EXIT_MARKER)
        total = self.total - (len(self._tail) - len(data))
        if total <= self.limit:
            return data[-self.limit :].decode(errors="replace"), peak
        cut = total - self.limit
        text = data[-self.limit :].decode(errors="replace")
        return f"[log truncated: {cut} earlier bytes not kept]\n{text}", peak


def _take_marker(data: bytes, marker: bytes, *, complete: bool = False) -> tuple[bytes, int | None]:
    """data without the last `marker<digits>` line, and those digits' value. With
    `complete`, a line whose newline has not come yet is not taken."""
    start = data.rfind(marker)
    if start == -1:
        return data, None
    end = data.find(b"\n", start)
    if end == -1:
        if complete:
            return data, None
        end = len(data)
    digits = data[start + len(marker) : end].strip()
    return data[:start] + data[end + 1 :], int(digits) if digits.isdigit() else None


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


def _is_stale(labels: dict[str, str], status: str, now: float, grace_s: float) -> bool:
    if WARM_LABEL in labels and _owner_gone(labels):
        return True  # a warm scorer whose worker process died (it serves no one else)
    deadline = _float_label(labels, DEADLINE_LABEL)
    started = _float_label(labels, STARTED_LABEL)
    if deadline is not None and now > deadline + grace_s:
        return True
    return status != "running" and (started is None or now - started > grace_s)


def process_started(pid: int) -> str:
    """When process `pid` of this host started (clock ticks since boot), "" if unknown."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count after its end.
    fields = stat_line[stat_line.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else ""


def _owner_gone(labels: dict[str, str]) -> bool:
    """Whether the process that owns a warm scorer is known to be gone: it was on this
    host and its pid is dead or now another process's. Another host's owner: unknown."""
    host, _sep, pid = labels.get(OWNER_LABEL, "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    started = labels.get(WARM_LABEL, "")
    now_started = process_started(int(pid))
    return not now_started or bool(started and now_started != started)


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
