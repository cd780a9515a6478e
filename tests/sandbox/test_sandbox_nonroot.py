"""The sandbox's limits hold for a worker that is not root, as in the production image.

Each run happens in a child of the test process that has dropped to uid 10001 with only the
engine socket's group (tests/sandbox/nonroot_worker.py): every file the runner handles on
the host, it handles as that uid. The limits are the kernel's: /output and /tmp are
capped tmpfs, ptrace and its kin are refused by the seccomp profile.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from scoring.sandbox_labels import SANDBOX_LABEL
from tests.sandbox import hostile_images as h
from tests.sandbox.nonroot_worker import WORKER_UID, run_as_worker, worker_root

pytestmark = pytest.mark.docker

LIMITS = {"output_bytes": 8 * 1024**2, "tmpfs_bytes": 8 * 1024**2, "timeout_s": 30}
RUN_LABEL = "heldout.test.nonroot-run"

# 600 MiB in 1 MiB files into a folder the worker could not have read (0700, then 0000).
OUTPUT_FLOOD = """
import os
os.mkdir('/output/hidden', 0o700)
written = 0
try:
    for i in range(600):
        with open(f'/output/hidden/part{i}', 'wb') as f:
            f.write(b'x' * 1024 * 1024)
        written += 1
    print('wrote all 600 MiB')
except OSError as exc:
    print(f'stopped after {written} MiB: {exc.strerror}')
os.chmod('/output/hidden', 0)
"""

# Attach to the sandbox's wrapper (PID 1, the process that reports the exit status) and to
# a child of its own (which no ptrace_scope setting forbids); try the other kernel calls
# the profile refuses.
PTRACE = """
import ctypes, errno, os, time
libc = ctypes.CDLL(None, use_errno=True)
def outcome(returned):
    return 'allowed' if returned != -1 else errno.errorcode[ctypes.get_errno()]
print('wrapper:', outcome(libc.ptrace(16, 1, None, None)))  # PTRACE_ATTACH
child = os.fork()
if child == 0:
    time.sleep(30)
    os._exit(0)
print('own child:', outcome(libc.ptrace(16, child, None, None)))
os.kill(child, 9)
libc.personality.argtypes = [ctypes.c_ulong]
print('personality:', outcome(libc.personality(0x0040000)))  # ADDR_NO_RANDOMIZE
print('keyring:', outcome(libc.syscall(248, b'user', b'k', b'v', 1, -2)))  # add_key
print('userfaultfd:', outcome(libc.syscall(323, 0)))
print('unshare:', outcome(libc.unshare(0x10000000)))  # CLONE_NEWUSER
"""

RENAMING_SCORER = """
import json, os, time
end = time.monotonic() + 2
rounds = 0
while time.monotonic() < end:
    with open('/output/.result.json.partial', 'w') as f:
        json.dump({'round': rounds}, f)
    os.replace('/output/.result.json.partial', '/output/result.json')
    rounds += 1
print('rounds', rounds)
"""

TMP_USER = """
import os, stat
with open('/tmp/scratch', 'w') as f:
    f.write('x' * 1000)
with open('/output/result.txt', 'w') as f:
    f.write('written')
print('tmp mode', oct(stat.S_IMODE(os.stat('/tmp').st_mode)), 'owner', os.stat('/tmp').st_uid)
"""

# /tmp root-owned 0755 and /output root-owned 0555 in the image itself.
LOCKED_FOLDERS = """
USER 0
RUN ["python3", "-c", "import os; os.chmod('/tmp', 0o755); os.mkdir('/output'); os.chmod('/output', 0o555)"]
USER 65534
"""


@pytest.fixture
def worker(docker_client: docker.DockerClient) -> Iterator:
    """Runs a command as a worker of the given uid; checks nothing stays behind."""
    label = uuid.uuid4().hex
    roots: list[Path] = []

    def run(uid: int, image: str, command: list[str]) -> dict:
        root = worker_root(uid)
        roots.append(root)
        arguments = {
            "root": str(root),
            "image": image,
            "command": command,
            "limits": LIMITS,
            "labels": {RUN_LABEL: label},
        }
        return run_as_worker(uid, arguments)

    yield run
    for root in roots:
        shutil.rmtree(root)
    mine = {"label": [SANDBOX_LABEL, f"{RUN_LABEL}={label}"]}
    assert docker_client.containers.list(all=True, filters=mine) == []
    assert docker_client.volumes.list(filters=mine) == []


@pytest.fixture(scope="module")
def locked_folders_image(docker_client: docker.DockerClient, scorer_image: str) -> str:
    base = h.slim_python_image(docker_client, scorer_image)
    return h.script_image(docker_client, base, "locked-folders", TMP_USER, LOCKED_FOLDERS)


@pytest.mark.parametrize("uid", [WORKER_UID, 0], ids=["uid-10001", "root"])
def test_600_mib_into_a_private_folder_stops_at_the_output_limit_and_leaves_nothing(
    worker, scorer_image, uid
):
    report = worker(uid, scorer_image, ["python", "-c", OUTPUT_FLOOD])

    assert report["uid"] == uid
    assert report["reason"] == "exceeded the output limit of 8 MiB"
    # The kernel refused the writes (ENOSPC) inside the container: the run ended by itself.
    assert "stopped after 8 MiB: No space left on device" in report["log"]
    assert report["duration_s"] < LIMITS["timeout_s"] / 2
    assert report["files"] == {}  # part of an output is not kept
    assert report["left_in_root"] == []  # the worker could delete everything


def test_ptrace_of_the_wrapper_and_other_refused_calls_fail_with_eperm(worker, scorer_image):
    report = worker(WORKER_UID, scorer_image, ["python", "-c", PTRACE])

    assert report["ok"], report["log"]
    assert report["log"].splitlines() == [
        "wrapper: EPERM",
        "own child: EPERM",
        "personality: EPERM",
        "keyring: EPERM",
        "userfaultfd: EPERM",
        "unshare: EPERM",
    ]


def test_tmp_and_output_are_writable_whatever_the_image_makes_of_them(worker, locked_folders_image):
    report = worker(WORKER_UID, locked_folders_image, ["python3", "/app/run.py"])

    assert report["ok"], report["log"]
    assert report["files"] == {"result.txt": "written"}
    # The image's mode stays, but the folder is the sandbox user's own.
    assert report["log"] == "tmp mode 0o755 owner 65534\n"


def test_a_scorer_renaming_its_result_file_is_never_failed_by_the_runner(worker, scorer_image):
    report = worker(WORKER_UID, scorer_image, ["python", "-c", RENAMING_SCORER])

    assert report["ok"], report["log"]
    rounds = int(report["log"].split()[1])
    assert rounds > 100
    assert report["files"] == {"result.json": f'{{"round": {rounds - 1}}}'}
    assert report["left_in_root"] == []
