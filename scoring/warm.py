"""Warm sandboxed scorers: the platform's built-in scorer kept running between submissions.

WarmDockerRunner is a DockerRunner that serves the built-in scorer's command (what
scoring.docker_scorer.DockerScorer runs: `python -m scoring.cli --spec /input/spec.json
--predictions /input/predictions --truth /input/truth --out /output ...`) from a warm
container, and runs everything else (organizers' programs, container submissions, any other
command) in a fresh container as DockerRunner does. Nothing here imports Django.

Contract:
- One warm container per (image, spec, ground truth, limits) per runner, so per worker
  process; created with exactly the cold sandbox's arguments
  (scoring.sandbox_docker._create_args: no network, read-only root, the sandbox user, no
  capabilities, the seccomp profile, the same memory, CPU, process and size limits, the
  deployment's labels), running scoring.warm_server as PID 1. Its /input is a folder of
  the worker's own holding the spec and the truth (as the cold scorer sees them) and, for
  the time of one submission, its predictions; its /output is the cold scorer's tmpfs
  volume, with LOG_ROOM more for logs.
- Each submission is scored by a fresh child of the server (see scoring.warm_server for
  what is emptied and killed between two), with the same time limit; its result, read
  back with the archive API, is checked by the same reader as the cold scorer's, and it
  is the same file: results are byte for byte those of a cold run (same image, same code).
- A warm container that fails to start, dies, does not answer within the time limit (plus
  ANSWER_GRACE_S), or answers out of protocol is removed, and the submission runs once in a
  fresh container (which raises SandboxUnavailable if the engine fails: retried later,
  never counted against the team). A key whose container failed to start runs cold for
  `idle_s`. A run that timed out or ran out of memory retires its container too.
- A container idle for `idle_s`, or older than max_age_s, is removed (a timer thread), as
  are all on close(). Its stdin is the worker's attach stream, open only for that
  container: when the worker process dies the server reads end-of-file and exits, and the
  engine removes the container (auto-remove). A clean-up on the same host also removes it
  (WARM_LABEL: the owner process is gone), and any clean-up once past its deadline label
  (creation plus max_age_s).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions
from docker.models.containers import Container

from scoring.docker_scorer import COMMAND as BUILTIN_COMMAND
from scoring.sandbox import OUTPUT_TARGET, Mount, RunResult, SandboxLimits
from scoring.sandbox_docker import DockerRunner, _create_args, _engine_errors
from scoring.sandbox_labels import WARM_LABEL, process_started
from scoring.sandbox_log import LogTail
from scoring.sandbox_output import PAGE_BYTES, copy_output
from scoring.warm_stream import AttachStream

log = logging.getLogger(__name__)
SERVER_COMMAND = ["python", "-P", "-m", "scoring.warm_server"]
INPUT_TARGET = "/input"
# /output room for the children's logs, beyond the output limit.
LOG_ROOM = 4 * 1024**2
# How long a container may take to import the libraries and load the truth (at most the
# run's time limit: a cold run pays the same within it).
START_S = 120.0
# How much later than the time limit the server must answer (it kills the child at it).
ANSWER_GRACE_S = 10.0
MAX_AGE_S = 3600.0
# Labels of the submission being scored (heldout.submission...) never go on a container
# that outlives it; these describe the container itself.
_KEPT_LABELS = ("heldout.scorer",)
_FOLDER_PREFIX = "warm-"
_FOLDER_NAME = re.compile(r"^warm-[A-Za-z0-9_]+-(\d+)@(.+)$")


class WarmFault(Exception):
    """The warm container failed (not the submission): the run goes to a fresh one."""


@dataclass(frozen=True)
class _Request:
    spec: Path
    predictions: Path
    truth: Path
    max_problems: int


def builtin_request(command: list[str], mounts: list[Mount]) -> _Request | None:
    """The built-in scorer's inputs when `command` is its command on its mounts, else None."""
    max_problems = 100
    if command[: len(BUILTIN_COMMAND)] != BUILTIN_COMMAND:
        return None
    rest = command[len(BUILTIN_COMMAND) :]
    if rest:
        if len(rest) != 2 or rest[0] != "--max-problems" or not rest[1].isdigit():
            return None
        max_problems = int(rest[1])
    sources = {mount.target: mount.source for mount in mounts if mount.read_only}
    targets = {f"{INPUT_TARGET}/{name}" for name in ("spec.json", "predictions", "truth")}
    if set(sources) != targets or len(mounts) != len(targets):
        return None
    return _Request(
        spec=sources[f"{INPUT_TARGET}/spec.json"],
        predictions=sources[f"{INPUT_TARGET}/predictions"],
        truth=sources[f"{INPUT_TARGET}/truth"],
        max_problems=max_problems,
    )


class WarmDockerRunner(DockerRunner):
    """A DockerRunner that keeps the built-in scorer warm (see the module's contract).

    `root` holds the containers' /input folders (a private folder of the worker, with the
    same path on the engine's host, like the attempt work folders).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        deployment: str = "",
        root: Path,
        idle_s: float = 300.0,
        max_age_s: float = MAX_AGE_S,
    ) -> None:
        super().__init__(client, deployment=deployment)
        self.root = root
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._idle: dict[tuple, _Warm] = {}
        self._busy: set[_Warm] = set()
        self._cold_until: dict[tuple, float] = {}
        self._timer: threading.Thread | None = None
        self._closed = threading.Event()

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
        request = builtin_request(command, mounts)
        if request is not None:
            # The time limit and the log's tail are per run, not the container's.
            fixed = dataclasses.replace(limits, timeout_s=0, log_bytes=0)
            key = (image, _sha256(request.spec), _sha256(request.truth), fixed)
            if self._cold_until.get(key, 0.0) <= time.monotonic():
                try:
                    return self._run_warm(key, image, request, output_dir, limits, labels or {})
                except WarmFault as exc:
                    log.warning("The warm scorer failed (%s): scoring in a fresh container.", exc)
                    shutil.rmtree(output_dir, ignore_errors=True)
        return super().run(
            image=image,
            command=command,
            mounts=mounts,
            output_dir=output_dir,
            limits=limits,
            labels=labels,
        )

    def warm_containers(self) -> int:
        """How many warm containers this runner holds."""
        with self._lock:
            return len(self._idle) + len(self._busy)

    def close(self) -> None:
        """Remove every warm container (the worker stops)."""
        self._closed.set()
        with self._lock:
            held = [*self._idle.values(), *self._busy]
            self._idle.clear()
            self._busy.clear()
        for warm in held:
            warm.remove()

    def expire(self) -> int:
        """Remove the containers idle past idle_s or older than max_age_s; how many went."""
        now = time.monotonic()
        with self._lock:
            old = [k for k, w in self._idle.items() if w.expired(now, self.idle_s, self.max_age_s)]
            gone = [self._idle.pop(key) for key in old]
        for warm in gone:
            warm.remove()
        return len(gone)

    def _run_warm(
        self,
        key: tuple,
        image: str,
        request: _Request,
        output_dir: Path,
        limits: SandboxLimits,
        labels: dict[str, str],
    ) -> RunResult:
        with self._lock:
            warm = self._idle.pop(key, None)
        if warm is not None and not warm.usable(time.monotonic(), self.max_age_s, limits):
            warm.remove()
            warm = None
        if warm is None:
            try:
                warm = self._start(key, image, request, limits, labels)
            except WarmFault:
                self._cold_until[key] = time.monotonic() + self.idle_s
                raise
        with self._lock:
            self._busy.add(warm)
        keep = False
        try:
            result = warm.score(request, output_dir, limits)
            keep = not (result.timed_out or result.oom_killed)
            return result
        finally:
            with self._lock:
                self._busy.discard(warm)
                keep = keep and not self._closed.is_set() and key not in self._idle
                if keep:
                    self._idle[key] = warm
            if not keep:
                warm.remove()

    def _start(
        self, key: tuple, image: str, request: _Request, limits: SandboxLimits, labels: dict
    ) -> _Warm:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = Path(
            tempfile.mkdtemp(
                prefix=_FOLDER_PREFIX,
                suffix=f"-{os.getpid()}@{socket.gethostname()}",
                dir=self.root,
            )
        )
        inputs = folder / "input"
        inputs.mkdir(mode=0o755)
        for source, name in ((request.spec, "spec.json"), (request.truth, "truth")):
            shutil.copyfile(source, inputs / name)
            (inputs / name).chmod(0o644)
        folder.chmod(0o711)  # the engine's bind mount resolves it; nobody lists it
        kept = {name: labels[name] for name in _KEPT_LABELS if name in labels}
        kept |= {**self.own_labels(), WARM_LABEL: process_started(os.getpid())}
        args = _create_args(
            image,
            SERVER_COMMAND,
            [Mount(inputs, INPUT_TARGET)],
            limits,
            kept,
            wrapped=False,
            lifetime_s=self.max_age_s,
            output_room=LOG_ROOM,
        )
        try:
            with _engine_errors(image):
                digest = str(self._image(image).id)
                container = self.client.containers.create(**args, auto_remove=True)
        except Exception as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise WarmFault(f"could not create it: {exc}") from exc
        warm = _Warm(key, image, digest, folder, container, time.monotonic())
        warm.start(min(START_S, limits.timeout_s))
        self._start_timer()
        return warm

    def _start_timer(self) -> None:
        with self._lock:
            if self._timer is not None and self._timer.is_alive():
                return
            self._timer = threading.Thread(
                target=self._expire_loop, name="heldout-warm", daemon=True
            )
            self._timer.start()

    def _expire_loop(self) -> None:
        every = max(0.05, min(self.idle_s / 4, 30.0))
        while not self._closed.wait(every):
            try:
                self.expire()
            except Exception:
                log.exception("Removing idle warm scorers failed; the next round tries again.")


@dataclass(eq=False)
class _Warm:
    """One warm container, its attach stream and its /input folder on the host."""

    key: tuple
    image: str
    digest: str
    folder: Path
    container: Container
    created: float
    last_used: float = 0.0
    stream: AttachStream | None = None

    def start(self, start_s: float) -> None:
        """Start the container and wait until its server is ready; WarmFault if not."""
        try:
            params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            self.stream = AttachStream(self.container.attach_socket(params=params))
            self.container.start()
            ready = self.stream.receive(time.monotonic() + start_s)
        except Exception as exc:
            self.remove()
            raise WarmFault(f"it did not start: {exc}") from exc
        if not ready.get("ready"):
            self.remove()
            raise WarmFault(f"it did not start: {ready!r}")
        self.last_used = time.monotonic()

    def usable(self, now: float, max_age_s: float, limits: SandboxLimits) -> bool:
        # A run must end (at the latest) before the deadline label says the container is stale.
        return now + limits.timeout_s + ANSWER_GRACE_S < self.created + max_age_s

    def expired(self, now: float, idle_s: float, max_age_s: float) -> bool:
        return now - self.last_used > idle_s or now - self.created > max_age_s

    def score(self, request: _Request, output_dir: Path, limits: SandboxLimits) -> RunResult:
        assert self.stream is not None
        rid = secrets.token_hex(16)
        predictions = self.folder / "input" / "predictions"
        _place(request.predictions, predictions)
        started = time.monotonic()
        try:
            self.stream.send(
                {
                    "op": "score",
                    "id": rid,
                    "timeout_s": limits.timeout_s,
                    "max_problems": request.max_problems,
                }
            )
            answer = self.stream.receive(started + limits.timeout_s + ANSWER_GRACE_S)
            duration = time.monotonic() - started
            checked = _checked(answer, rid)
            truncated, log_text = self._collect(rid, output_dir, limits)
            self.stream.send({"op": "forget"})
        except (OSError, EOFError, ValueError, docker.errors.DockerException,
                requests.exceptions.RequestException) as exc:  # fmt: skip
            raise WarmFault(str(exc)) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                predictions.unlink()
        if not checked["clean"]:
            raise WarmFault("its scratch folders could not be emptied")
        self.last_used = time.monotonic()
        return RunResult(
            exit_code=checked["exit_code"],
            timed_out=checked["timed_out"],
            oom_killed=checked["oom_killed"],
            duration_s=duration,
            peak_memory_bytes=checked["peak_memory_bytes"],
            log=log_text,
            output_truncated=truncated,
            image=self.image,
            image_digest=self.digest,
        )

    def _collect(self, rid: str, output_dir: Path, limits: SandboxLimits) -> tuple[bool, str]:
        """Copy the run's result to output_dir; (over the output limit, log tail)."""
        copied = Path(tempfile.mkdtemp(prefix=".warm-", dir=output_dir.parent))
        try:
            chunks, _stat = self.container.get_archive(f"{OUTPUT_TARGET}/{rid}")
            over = copy_output(chunks, copied, limits.output_bytes + LOG_ROOM)
            if over:
                raise ValueError("its /output is over its size")
            tail = LogTail(limits.log_bytes)
            log_file = copied / "log"
            if log_file.is_file():
                with log_file.open("rb") as f:
                    while chunk := f.read(1 << 16):
                        tail.feed(chunk)
            text, _peak = tail.finish()
            result = copied / "out"
            output_dir.mkdir(parents=True, exist_ok=True)
            if _pages(result) > limits.output_bytes:
                return True, text
            if result.is_dir():
                for entry in result.iterdir():
                    entry.rename(output_dir / entry.name)
            return False, text
        finally:
            shutil.rmtree(copied, ignore_errors=True)

    def remove(self) -> None:
        if self.stream is not None:
            self.stream.close()
        with contextlib.suppress(
            docker.errors.DockerException, requests.exceptions.RequestException
        ):
            self.container.remove(force=True, v=True)
        shutil.rmtree(self.folder, ignore_errors=True)


def _checked(answer: dict[str, Any], rid: str) -> dict[str, Any]:
    """The server's answer, every field of the expected type (ValueError otherwise)."""
    if answer.get("id") != rid:
        raise ValueError(f"it answered another request: {answer!r}")
    exit_code = answer.get("exit_code")
    peak = answer.get("peak_memory_bytes")
    if not isinstance(exit_code, int) or not (peak is None or isinstance(peak, int)):
        raise ValueError(f"malformed answer {answer!r}")
    flags = {name: answer.get(name) for name in ("timed_out", "oom_killed", "clean")}
    if not all(isinstance(value, bool) for value in flags.values()):
        raise ValueError(f"malformed answer {answer!r}")
    return {"exit_code": exit_code, "peak_memory_bytes": peak, **flags}


def _place(source: Path, target: Path) -> None:
    """The submission's predictions at target, readable by the sandbox user: a hard link
    of a file that already is, else a copy (private storage may not be)."""
    if source.stat().st_mode & 0o004:
        try:
            os.link(source, target)
            return
        except OSError:
            pass  # another file system
    shutil.copyfile(source, target)
    target.chmod(0o644)


def _pages(folder: Path) -> int:
    """Bytes the folder's files take in tmpfs pages, as the kernel counted them."""
    if not folder.is_dir():
        return 0
    total = 0
    for path in folder.rglob("*"):
        if path.is_file():
            total += -(-path.stat().st_size // PAGE_BYTES) * PAGE_BYTES
    return total


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def warm_folders_cleanup(root: Path) -> int:
    """Remove the /input folders of warm containers whose process is gone from this host
    (killed before it could remove them). Returns how many went."""
    if not root.is_dir():
        return 0
    here = socket.gethostname()
    removed = 0
    for path in root.glob(f"{_FOLDER_PREFIX}*"):
        match = _FOLDER_NAME.match(path.name)
        if match is None or match[2] != here or process_started(int(match[1])):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += not path.exists()
    return removed
