"""Worker "hosts" on one machine: a process in a mount and UTS namespace of its own
(`unshare`, as root), whose host name is its own and for which the web process's data
folder is an empty tmpfs: the web's media folder does not exist there. Everything it
shares with the web must go through PostgreSQL, the broker, object storage and the
registry (tests/test_multihost.py, tests/test_faults_live.py).

`host_command(name, hidden, command)` is the command line that runs `command` as host
`name`; run as `python -m tests.host_process NAME HIDDEN -- COMMAND...` (inside the new
namespaces) this module sets the host name, mounts the tmpfs over HIDDEN, checks that
HIDDEN/files is gone, says so on stdout and executes COMMAND in its place (same pid).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

UNSHARE = "unshare"


def host_command(name: str, hidden: Path, command: list[str]) -> list[str]:
    """`command` run as the host `name`, for which `hidden` is an empty folder."""
    if shutil.which(UNSHARE) is None:
        raise RuntimeError("unshare (util-linux) is missing: the multi-host tests need it")
    if os.geteuid() != 0:
        raise RuntimeError(
            "the multi-host tests run worker hosts in namespaces of their own (unshare "
            "--mount --uts), which needs root: run them as root, as CI does"
        )
    namespaces = [UNSHARE, "--mount", "--uts", "--propagation", "private", "--"]
    entry = [sys.executable, "-m", "tests.host_process", name, str(hidden), "--"]
    return [*namespaces, *entry, *command]


def host_env(folder: Path) -> dict[str, str]:
    """The settings of a host whose only folder is `folder` (its data and work folders)."""
    (folder / "work").mkdir(parents=True, exist_ok=True)
    return {"HELDOUT_DATA_DIR": str(folder), "HELDOUT_WORK_DIR": str(folder / "work")}


def media_folder(data_dir: Path) -> Path:
    """The web's media folder: where it keeps stored files on the file system."""
    return data_dir / "files"


def sees(pid: int, path: Path) -> bool:
    """Whether `path` exists for the process `pid` (through its own mount namespace)."""
    return Path(f"/proc/{pid}/root{path}").exists()


def main(argv: list[str]) -> None:
    name, hidden, separator, *command = argv
    if separator != "--" or not command:
        raise SystemExit("usage: python -m tests.host_process NAME HIDDEN -- COMMAND...")
    socket.sethostname(name)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", f"not-{name}s", hidden], check=True
    )
    media = media_folder(Path(hidden))
    if media.exists() or any(Path(hidden).iterdir()):
        raise SystemExit(f"host {name}: {hidden} is still visible")
    sys.stdout.write(f"host {name}: {media} does not exist here\n")
    sys.stdout.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
