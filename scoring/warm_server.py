"""The process inside a warm scorer container (scoring.warm starts it and talks to it).

    python -P -m scoring.warm_server

It runs as the container's PID 1, imports the scoring libraries once, loads the task's
/input/spec.json and /input/truth once, then serves one submission at a time, read as
JSON lines on stdin; it answers each with one JSON line on stdout:

    {"op": "score", "id": "<32 hex>", "timeout_s": 600, "max_problems": 100}
    -> {"id": ..., "exit_code": 0, "timed_out": false, "oom_killed": false,
        "peak_memory_bytes": ..., "clean": true}
    {"op": "forget"}      (no answer: /output is emptied)

For each submission it forks a child that scores /input/predictions (the worker puts the
submission's file there before asking) exactly as `python -m scoring.cli` would, writing
/output/<id>/out (the result) and /output/<id>/log (the child's stdout and stderr). Nothing
of one submission survives into the next:
- the child gets a fresh scratch folder in /tmp, stdin from /dev/null, stdout and stderr
  to its log, not the server's protocol descriptors, and is killed at timeout_s;
- when it ends, every other process in the container is killed and reaped (PID 1 may kill
  them all; none may kill PID 1), and /tmp and /dev/shm are emptied; /output is emptied
  before the next child starts (and on "forget", once the worker has copied it);
- this process never reads a submission's bytes, so no child can find another's data in
  the memory it inherits; and it is not dumpable, so no child can read or write its memory
  or open its descriptors (the protocol) through /proc.
An answer with "clean": false means a scratch area could not be emptied: the worker stops
the container. End of stdin (the worker went away) ends the server, and so the container.

Only the standard library and the scoring modules: it is copied into the scorer image.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import select
import signal
import stat
import sys
import tempfile
import time
import traceback
from typing import IO, Any

SPEC = "/input/spec.json"
TRUTH = "/input/truth"
PREDICTIONS = "/input/predictions"
OUTPUT = "/output"
SCRATCH = ("/tmp", "/dev/shm")
REQUEST_ID = re.compile(r"[0-9a-f]{32}")
_PR_SET_DUMPABLE = 4
_OOM_FILES = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")


def main() -> int:
    if os.getpid() != 1:
        sys.stderr.write("scoring.warm_server must be the container's PID 1\n")
        return 2
    _set_dumpable(False)
    # Answers only on a descriptor of their own: whatever a library prints goes to stderr.
    answers = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    preloaded = _preload()
    _answer(answers, {"ready": True, "preloaded": preloaded is not None})
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return 0  # the worker went away
        request = json.loads(line)
        if request.get("op") == "forget":
            _empty(OUTPUT)
        elif request.get("op") == "score":
            _answer(answers, _serve(request, preloaded, answers.fileno()))
        else:
            sys.stderr.write(f"unknown request {request.get('op')!r}\n")
            return 2


def _preload() -> Any:
    """The libraries, the spec and the truth, loaded once; None if the truth cannot be
    loaded here (each child then loads it and fails as the cold scorer would)."""
    from scoring import cli  # noqa: F401  (numpy, pyarrow and the scoring modules)

    try:
        import pandas  # noqa: F401
        from sklearn import metrics  # noqa: F401
    except ImportError:
        pass  # a metric that needs them imports them, as in the cold scorer
    from scoring.evaluate import load_truth
    from scoring.spec import TaskSpec

    try:
        with open(SPEC, encoding="utf-8") as f:
            spec = TaskSpec.from_dict(json.load(f))
        return spec, load_truth(TRUTH, spec)
    except Exception:
        traceback.print_exc()
        return None


def _serve(request: dict[str, Any], preloaded: Any, answers: int) -> dict[str, Any]:
    rid = str(request.get("id", ""))
    if not REQUEST_ID.fullmatch(rid):
        raise SystemExit(f"bad request id {rid!r}")
    timeout_s = float(request["timeout_s"])
    max_problems = int(request["max_problems"])
    clean = _empty(OUTPUT) and all(_empty(root) for root in SCRATCH if os.path.isdir(root))
    out = f"{OUTPUT}/{rid}"
    os.mkdir(out, 0o755)
    log = os.open(f"{out}/log", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    ooms = _oom_kills()
    pid = os.fork()
    if pid == 0:
        os.close(answers)
        _child(rid, log, max_problems, preloaded)
    os.close(log)
    status, rusage, timed_out = _wait(pid, timeout_s)
    strays = _kill_the_rest()
    clean = clean and all(_empty(root) for root in SCRATCH if os.path.isdir(root))
    after = _oom_kills()
    code = os.waitstatus_to_exitcode(status)
    return {
        "id": rid,
        # As a shell reports it: 128 + the signal for a killed child.
        "exit_code": 128 - code if code < 0 else code,
        "timed_out": timed_out,
        "oom_killed": ooms is not None and after is not None and after > ooms,
        "peak_memory_bytes": rusage.ru_maxrss * 1024,
        "strays": strays,
        "clean": clean,
    }


def _child(rid: str, log: int, max_problems: int, preloaded: Any) -> None:
    """Score /input/predictions as `python -m scoring.cli` would; never returns."""
    code = 1
    try:
        os.setsid()
        # The child, not the server, is what the OOM killer should take.
        _set_dumpable(True)
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        except OSError:
            pass
        _set_dumpable(False)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        scratch = f"/tmp/{rid}"
        os.mkdir(scratch, 0o700)
        os.chdir(scratch)
        tempfile.tempdir = scratch
        os.environ.update(TMPDIR=scratch)
        from scoring import cli

        argv = ["--spec", SPEC, "--predictions", PREDICTIONS, "--truth", TRUTH]
        argv += ["--out", f"{OUTPUT}/{rid}/out", "--max-problems", str(max_problems)]
        code = cli.main(argv, preloaded=preloaded)
    except SystemExit as exc:  # argparse: 2, like the cold scorer
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _wait(pid: int, timeout_s: float) -> tuple[int, Any, bool]:
    """(wait status, resource usage, timed out) of the child, killed at timeout_s."""
    deadline = time.monotonic() + timeout_s
    timed_out = not _exited_before(pid, deadline)
    if timed_out:
        _kill(pid)
    _pid, status, rusage = os.wait4(pid, 0)
    return status, rusage, timed_out


def _exited_before(pid: int, deadline: float) -> bool:
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # an older kernel, or a profile without pidfd_open: poll
        while time.monotonic() < deadline:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
            time.sleep(0.002)
        return False
    try:
        remaining = max(0.0, deadline - time.monotonic())
        ready, _w, _x = select.select([pidfd], [], [], remaining)
        return bool(ready)
    finally:
        os.close(pidfd)


def _kill(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        with contextlib.suppress(ProcessLookupError):
            target()


def _kill_the_rest() -> int:
    """Kill and reap every process of the container but this one; how many there were."""
    reaped = 0
    while True:
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)  # all but PID 1 (this process)
        try:
            os.waitpid(-1, 0)
            reaped += 1
        except ChildProcessError:
            return reaped


def _empty(root: str) -> bool:
    """Remove everything under root (not root itself); whether it is empty now."""
    for name in os.listdir(root):
        _remove(os.path.join(root, name))
    return not os.listdir(root)


def _remove(path: str) -> None:
    # Iterative, and each folder made writable first: a child may leave deep or locked
    # trees. A folder is listed once; what could not go stays, and _empty reports it.
    stack, listed = [path], set()
    while stack:
        top = stack.pop()
        try:
            if not stat.S_ISDIR(os.lstat(top).st_mode):
                os.unlink(top)
            elif top in listed:
                os.rmdir(top)
            else:
                os.chmod(top, 0o700)
                listed.add(top)
                stack.append(top)
                stack.extend(os.path.join(top, entry) for entry in os.listdir(top))
        except OSError:
            pass


def _oom_kills() -> int | None:
    for name in _OOM_FILES:
        try:
            with open(name) as f:
                for line in f:
                    key, _sep, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def _set_dumpable(on: bool) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, int(on), 0, 0, 0)


def _answer(answers: IO[str], message: dict[str, Any]) -> None:
    answers.write(json.dumps(message) + "\n")


if __name__ == "__main__":
    sys.exit(main())
