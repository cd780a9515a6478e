"""What code inside the sandbox can and cannot reach.

Network checks stay on loopback: no interface but `lo`, no route, a connection to
127.0.0.1 refused, and name resolution failing at once (no packet can leave).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import docker
import pytest

from scoring.sandbox import Mount

pytestmark = pytest.mark.docker

NETWORK_PROBE = """
import json, os, socket, time

def attempt(action):
    started = time.monotonic()
    try:
        action()
        outcome = "succeeded"
    except OSError as exc:
        outcome = type(exc).__name__
    return outcome, time.monotonic() - started

def connect_loopback():
    with socket.socket() as s:
        s.settimeout(5)
        s.connect(("127.0.0.1", 1))

with open("/proc/net/route") as f:
    routes = f.read().splitlines()[1:]
print(json.dumps({
    "interfaces": sorted(os.listdir("/sys/class/net")),
    "routes": routes,
    "connect": attempt(connect_loopback),
    "dns": attempt(lambda: socket.getaddrinfo("example.com", 443)),
}))
"""

FILESYSTEM_PROBE = """
import json

def write(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return "written"
    except OSError as exc:
        return exc.strerror

print(json.dumps({
    path: write(path)
    for path in ["/etc/heldout", "/usr/heldout", "/heldout", "/input/heldout",
                 "/tmp/heldout", "/output/heldout"]
}))
"""

IDENTITY_PROBE = """
import json, os
status = dict(
    line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line
)
print(json.dumps({
    "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
    **{name: status[name].strip() for name in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs")},
}))
"""


def test_it_has_no_network_but_loopback(run_python):
    result = run_python(NETWORK_PROBE)

    assert result.ok, result.log
    probe = json.loads(result.log)
    assert probe["interfaces"] == ["lo"]
    assert probe["routes"] == []
    outcome, seconds = probe["connect"]
    assert outcome == "ConnectionRefusedError"
    assert seconds < 1
    outcome, seconds = probe["dns"]
    assert outcome == "gaierror"
    assert seconds < 2


def test_its_root_and_inputs_are_read_only_and_tmp_and_output_writable(run_python, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir(mode=0o755)
    output = tmp_path / "output"

    result = run_python(FILESYSTEM_PROBE, mounts=[Mount(inputs, "/input")], output_dir=output)

    assert result.ok, result.log
    assert json.loads(result.log) == {
        "/etc/heldout": "Read-only file system",
        "/usr/heldout": "Read-only file system",
        "/heldout": "Read-only file system",
        "/input/heldout": "Read-only file system",
        "/tmp/heldout": "written",
        "/output/heldout": "written",
    }
    assert (output / "heldout").read_text() == "x"
    assert list(inputs.iterdir()) == []


def test_it_runs_as_nobody_without_capabilities(run_python):
    result = run_python(IDENTITY_PROBE)

    assert result.ok, result.log
    assert json.loads(result.log) == {
        "uid": 65534,
        "euid": 65534,
        "gid": 65534,
        "groups": [65534],
        "CapEff": "0000000000000000",
        "CapPrm": "0000000000000000",
        "CapBnd": "0000000000000000",
        "NoNewPrivs": "1",
    }


@pytest.fixture
def setuid_root_id(tmp_path: Path) -> Path:
    """A setuid-root copy of `id`: running it would make the caller root (euid 0)."""
    folder = tmp_path / "suid"
    folder.mkdir(mode=0o755)
    program = folder / "id"
    shutil.copy(shutil.which("id") or "/usr/bin/id", program)
    program.chmod(0o4755)
    assert program.stat().st_uid == 0, "this test needs to run as root to make the program"
    return folder


def test_a_setuid_program_does_not_raise_privileges(
    run_python, setuid_root_id, docker_client, scorer_image
):
    escalate = "import subprocess; subprocess.run(['/input/suid/id', '-u'], check=True)"
    mounts = [Mount(setuid_root_id, "/input/suid")]

    result = run_python(escalate, mounts=mounts)

    assert result.ok, result.log
    assert result.log.strip() == "65534"
    # The same program without no-new-privileges does become root: the check is real.
    unguarded = docker_client.containers.run(
        scorer_image,
        ["/input/suid/id", "-u"],
        network_mode="none",
        user="65534:65534",
        cap_drop=["ALL"],
        mounts=[docker.types.Mount("/input/suid", str(setuid_root_id), type="bind")],
        remove=True,
    )
    assert unguarded.strip() == b"0"


def test_links_it_leaves_in_the_output_are_removed(run_python, tmp_path):
    output = tmp_path / "output"
    code = "import os; os.symlink('/etc/passwd', '/output/result.json'); open('/output/ok', 'w')"

    result = run_python(code, output_dir=output)

    assert result.ok, result.log
    assert sorted(p.name for p in output.iterdir()) == ["ok"]
