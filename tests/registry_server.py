"""Debian's docker-registry on loopback, for tests that push and pull images.

Docker trusts registries on 127.0.0.0/8 without TLS by default (no insecure-registries
setting needed). Storage is a folder the caller gives; two servers may share it, so a test
can start a second one later on another port that serves the same images.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import docker
import docker.errors
import pytest

REGISTRY_BINARY = "/usr/bin/docker-registry"


def untag(client: docker.DockerClient, reference: str) -> None:
    """Remove one reference (a tag or repo@digest) a test made; the image stays under
    its other names (never forced)."""
    with suppress(docker.errors.ImageNotFound):
        client.images.remove(reference)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def registry_server(storage: Path, port: int, log: Path) -> Iterator[str]:
    """Serve `storage` on 127.0.0.1:`port`; yields "127.0.0.1:<port>"; stops on exit."""
    if not Path(REGISTRY_BINARY).exists():
        pytest.fail(
            f"{REGISTRY_BINARY} is missing: deploy/system-deps.sh installs docker-registry.",
            pytrace=False,
        )
    storage.mkdir(parents=True, exist_ok=True)
    config = log.with_suffix(".yml")
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    address = f"127.0.0.1:{port}"
    try:
        _wait_until_up(address, proc, log)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(address: str, proc: subprocess.Popen, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"docker-registry exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    pytest.fail(f"docker-registry did not answer on {address}:\n{log.read_text()}")
