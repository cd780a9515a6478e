"""A real S3-protocol server for the tests: moto's server mode (`moto_server`, from the dev
extra) on a loopback port, started as a subprocess by the tests that need it, and the
helpers that point Django's storages at it (the web test process) or hand its settings to
worker processes (their environment).

Test code only: production uses AWS S3, MinIO, R2 or any S3-compatible store
(docs/production.md).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

ACCESS_KEY = "heldout-test"
SECRET_KEY = "heldout-test-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str
    private_bucket: str

    def env(self) -> dict[str, str]:
        """The settings a process needs to store its files in this server's buckets."""
        return {
            "HELDOUT_S3_ENDPOINT_URL": self.endpoint_url,
            "HELDOUT_S3_BUCKET": self.bucket,
            "HELDOUT_S3_PRIVATE_BUCKET": self.private_bucket,
            "HELDOUT_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "HELDOUT_S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "HELDOUT_S3_REGION": REGION,
            "HELDOUT_S3_ADDRESSING_STYLE": "path",
        }

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def keys(self, bucket: str) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def s3_server(log: Path) -> Iterator[S3Server]:
    """Start moto's S3 server on loopback with two fresh buckets; stop it on exit."""
    port = _free_port()
    moto = Path(sys.executable).with_name("moto_server")
    command = [str(moto), "-H", "127.0.0.1", "-p", str(port)]
    with log.open("ab") as out:
        env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_until_up(endpoint, proc, log)
        suffix = uuid.uuid4().hex[:8]
        server = S3Server(endpoint, f"heldout-public-{suffix}", f"heldout-private-{suffix}")
        for bucket in (server.bucket, server.private_bucket):
            server.client().create_bucket(Bucket=bucket)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(endpoint: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"moto_server did not answer in 30 s: {log.read_text()[-2000:]}")
