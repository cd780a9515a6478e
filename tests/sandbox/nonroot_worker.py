"""The worker's side of a sandboxed run, as the production image runs it: a non-root uid.

`run_as_worker` forks the test process and, in the child, drops to uid/gid WORKER_UID (the
uid of deploy/Dockerfile's worker) with only the engine socket's group, before doing what a
worker's attempt does: make a private work folder under `root`, run the command with a
DockerRunner, read what the run left in its output folder and remove the work folder
(without ignoring errors, unlike attempt_work_dir, so that a file the worker cannot delete
shows). Everything the runner does on the host happens as that uid. A fork rather than a
new interpreter: the test's interpreter lives where the worker uid may not read.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import traceback
from pathlib import Path
from typing import Any

from scoring.sandbox import SandboxLimits
from scoring.sandbox_docker import DockerRunner

WORKER_UID = 10001
DOCKER_SOCKET = Path("/var/run/docker.sock")


def worker_root(uid: int) -> Path:
    """A private folder for the worker's work folders, owned by uid."""
    root = Path(tempfile.mkdtemp(prefix="heldout-worker-"))
    os.chown(root, uid, uid)
    root.chmod(0o700)
    return root


def run_as_worker(uid: int, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run `attempt(arguments)` in a child process as uid (0: as root); its report."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read_end)
        try:
            _drop_to(uid, home=arguments["root"])
            outcome = attempt(arguments)
        except BaseException:
            outcome = {"error": traceback.format_exc()}
        with os.fdopen(write_end, "w") as out:
            json.dump(outcome, out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as received:
        text = received.read()
    os.waitpid(pid, 0)
    report: dict[str, Any] = json.loads(text)
    assert "error" not in report, report["error"]
    return report


def _drop_to(uid: int, *, home: str) -> None:
    if uid == 0:
        return
    # The engine's socket group, as the production worker gets it; nothing else.
    os.setgroups([DOCKER_SOCKET.stat().st_gid] if DOCKER_SOCKET.exists() else [])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    os.environ["HOME"] = home  # the SDK looks for ~/.docker/config.json


def attempt(arguments: dict[str, Any]) -> dict[str, Any]:
    root = Path(arguments["root"])
    work = Path(tempfile.mkdtemp(prefix="score-1-1-", dir=root))
    output = work / "output"
    limits = SandboxLimits(**arguments["limits"])
    result = DockerRunner().run(
        image=arguments["image"],
        command=arguments["command"],
        mounts=[],
        output_dir=output,
        limits=limits,
        labels=arguments["labels"],
    )
    files = {
        str(path.relative_to(output)): path.read_text(errors="replace")[:200]
        for path in sorted(output.rglob("*"))
        if path.is_file()
    }
    shutil.rmtree(work)
    return {
        "uid": os.getuid(),
        "ok": result.ok,
        "exit_code": result.exit_code,
        "reason": result.failure_reason(limits),
        "duration_s": result.duration_s,
        "log": result.log,
        "files": files,
        "left_in_root": sorted(os.listdir(root)),
    }
