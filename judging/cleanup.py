"""Each worker host's clean-up after dead workers: this deployment's sandbox containers
past their deadline, and the work folders of scoring attempts that are over.

Every `celery worker` starts a CleanupTimer in its main process (judging.signals, on
worker_ready), which runs `cleanup_round` at once and then every
HELDOUT_SANDBOX_CLEANUP_EVERY_S seconds until the worker stops. A thread in each worker,
not a beat task: a beat task runs on one host of the cluster, but each host has its own
Docker engine and its own work folders.

A round
- kills and removes this deployment's sandbox containers that are
  HELDOUT_SANDBOX_CLEANUP_GRACE_S past their deadline label (their own worker kills them at
  the deadline, so such a container's worker is gone), and stopped ones older than the
  grace; containers of other deployments on a shared engine are never touched
  (DockerRunner.cleanup_stale);
- removes the attempt work folders under HELDOUT_WORK_DIR whose process is gone from this
  host, or whose attempt is no longer running (finished, or requeued by the reaper), and
  the /input folders of warm scorers whose process is gone (scoring.warm).

`attempt_work_dir` makes those folders: `<kind>-<id>-<attempt>-<random>-<pid>@<host>`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)
SCORE = "score"
REPLICATE = "replicate"
REFERENCE = "reference"  # a competition's reference rows (judging/references.py)
_NAME = re.compile(r"^(score|replicate|reference)-(\d+)-(\d+)-[A-Za-z0-9_]+-(\d+)@(.+)$")


@dataclass(frozen=True)
class WorkDir:
    path: Path
    kind: str
    object_id: int
    attempt: int
    pid: int
    host: str


def work_root() -> Path:
    return Path(settings.HELDOUT_WORK_DIR)


@contextmanager
def attempt_work_dir(*, kind: str, object_id: int, attempt: int) -> Iterator[Path]:
    """A private (0700) scratch folder for one attempt, removed when it ends. Its name
    says whose it is, so a clean-up round can remove it if this process dies first."""
    root = work_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    suffix = f"-{os.getpid()}@{socket.gethostname()}"
    path = Path(tempfile.mkdtemp(prefix=f"{kind}-{object_id}-{attempt}-", suffix=suffix, dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def work_dir_parse(path: Path) -> WorkDir | None:
    """The owner of a work folder, or None for a name attempt_work_dir never makes."""
    match = _NAME.match(path.name)
    if match is None:
        return None
    kind, object_id, attempt, pid, host = match.groups()
    return WorkDir(path, kind, int(object_id), int(attempt), int(pid), host)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def attempt_running(work_dir: WorkDir) -> bool:
    from competitions.models import Attempt, Replication

    if work_dir.kind == REFERENCE:
        # No claim to ask about: its folder goes once its process is gone (on its host).
        return True
    if work_dir.kind == SCORE:
        return Attempt.objects.filter(
            submission_id=work_dir.object_id,
            number=work_dir.attempt,
            outcome=Attempt.Outcome.RUNNING,
        ).exists()
    return Replication.objects.filter(
        pk=work_dir.object_id,
        status=Replication.Status.RUNNING,
        attempts=work_dir.attempt,
    ).exists()


def work_dirs_cleanup(*, root: Path | None = None) -> int:
    """Remove the work folders of attempts that are over. Returns how many went.

    A folder goes when its process is not alive on this host, or its attempt is no longer
    running; a folder of another host (a shared HELDOUT_WORK_DIR) only in the second case.
    """
    root = root or work_root()
    if not root.is_dir():
        return 0
    here = socket.gethostname()
    removed = 0
    for path in sorted(root.iterdir()):
        work_dir = work_dir_parse(path)
        if work_dir is None or not path.is_dir():
            continue
        dead = work_dir.host == here and not pid_alive(work_dir.pid)
        if dead or not attempt_running(work_dir):
            shutil.rmtree(path, ignore_errors=True)
            removed += not path.exists()
    return removed


def cleanup_round() -> dict[str, int]:
    """One clean-up of this host: stale containers, then dead attempts' work folders."""
    from judging.services import sandbox_cleanup_stale
    from scoring.warm import warm_folders_cleanup

    containers = sandbox_cleanup_stale()
    folders = work_dirs_cleanup() + warm_folders_cleanup(work_root())
    if folders:
        log.warning("Clean-up: removed %d work folder(s) of attempts that are over.", folders)
    return {"containers": containers, "work_dirs": folders}


class CleanupTimer(threading.Thread):
    """Runs cleanup_round now and every `every_s` seconds until stop()."""

    def __init__(self, every_s: float) -> None:
        super().__init__(name="heldout-cleanup", daemon=True)
        self.every_s = every_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        log.info(
            "Sandbox clean-up every %g s for deployment %s (containers, work folders in %s).",
            self.every_s,
            settings.HELDOUT_DEPLOYMENT_ID,
            work_root(),
        )
        while not self._stop_event.is_set():
            try:
                cleanup_round()
            except Exception:
                log.exception("The clean-up round failed; the next one tries again.")
            finally:
                # Its own connection, closed between rounds: a pool process forked
                # meanwhile must not inherit an open one.
                connections.close_all()
            self._stop_event.wait(self.every_s)

    def stop(self) -> None:
        self._stop_event.set()


_timer: CleanupTimer | None = None


def cleanup_timer_start() -> CleanupTimer:
    """Start this process's clean-up timer (once; later calls return the running one)."""
    global _timer
    if _timer is None or not _timer.is_alive():
        _timer = CleanupTimer(settings.HELDOUT_SANDBOX_CLEANUP_EVERY_S)
        _timer.start()
    return _timer


def cleanup_timer_stop() -> None:
    global _timer
    if _timer is not None:
        _timer.stop()
        _timer = None
