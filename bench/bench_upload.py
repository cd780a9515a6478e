"""Benchmark: one large file through the resumable upload protocol (tus, docs/uploads.md).

    .venv/bin/python bench/bench_upload.py [--size-mib 1024] [--piece-mib 64] [--rounds 2]

gunicorn as in production (config/gunicorn.py: 2 workers x 8 threads) on loopback, a
PostgreSQL database of the run's own (bench/benchlib.py, dropped at the end), a temporary
data folder. The copy and the upload take turns, --rounds times, so load from elsewhere on
the machine falls on both alike; the medians are compared. Against issue 13's targets:

1. server memory: the largest growth of any gunicorn worker's resident set (sampled every
   50 ms from /proc) over its size after a first small request, over all the uploads.
   Target: <= 64 MiB.
2. throughput: bytes per second from creating the upload to the last PATCH's answer
   (which includes hashing the complete file), against a plain local copy of the same file
   into the same folder (read, write, fsync). Target: >= 80 % of the copy's.

The file is random bytes; its sha256 as the server reports it is checked. Linux only
(/proc). The page cache is not dropped: both the copy and the upload read a cached file;
dirty pages are flushed (sync) before each.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from benchlib import say, scratch_database, setup_django, start_gunicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MIB = 2**20


def make_file(path: Path, size_mib: int) -> str:
    block = os.urandom(MIB)
    sha = hashlib.sha256()
    with path.open("wb") as out:
        for n in range(size_mib):
            # Each MiB differs from the others (a counter in front), cheaply.
            piece = n.to_bytes(8, "big") + block[8:]
            out.write(piece)
            sha.update(piece)
    return sha.hexdigest()


def local_copy_seconds(source: Path, target: Path) -> float:
    os.sync()  # what earlier writes left dirty is not this copy's to flush
    started = time.perf_counter()
    with source.open("rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst, MIB)
        dst.flush()
        os.fsync(dst.fileno())
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


class RssSampler(threading.Thread):
    """The peak resident set of each gunicorn worker while running."""

    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        self.pids = pids
        self.baseline = {pid: rss_bytes(pid) for pid in pids}
        self.peak = dict(self.baseline)
        self.running = True

    def run(self) -> None:
        while self.running:
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], rss_bytes(pid))
            time.sleep(0.05)

    def growth(self) -> int:
        return max(self.peak[pid] - self.baseline[pid] for pid in self.pids)


def upload(base: str, token: str, path: Path, piece: int) -> tuple[float, dict]:
    headers = {"Authorization": f"Token {token}", "Tus-Resumable": "1.0.0"}
    size = path.stat().st_size
    session = requests.Session()
    os.sync()
    started = time.perf_counter()
    created = session.post(
        f"{base}/api/v1/uploads/",
        headers={
            **headers,
            "Upload-Length": str(size),
            "Upload-Metadata": "filename " + base64.b64encode(path.name.encode()).decode(),
        },
        timeout=30,
    )
    created.raise_for_status()
    url = created.headers["Location"]
    offset = 0
    with path.open("rb") as source:
        while offset < size:
            response = session.patch(
                url,
                data=source.read(piece),
                headers={
                    **headers,
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
                timeout=600,
            )
            response.raise_for_status()
            offset = int(response.headers["Upload-Offset"])
    elapsed = time.perf_counter() - started
    return elapsed, session.get(url, headers=headers, timeout=30).json()


def measure(args: argparse.Namespace, env: dict[str, str], tmp: Path) -> bool:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    user = User.objects.create_user("bench-uploader", password="not-used")
    token = Token.objects.create(user=user).key
    source = tmp / "big.bin"
    expected = make_file(source, args.size_mib)
    size = args.size_mib * MIB
    copies: list[float] = []
    uploads: list[float] = []
    proc, base = start_gunicorn(env, tmp / "gunicorn.log")
    try:
        requests.get(base + "/", timeout=10)  # every worker imports the app on its first request
        sampler = RssSampler(worker_pids(proc.pid))
        sampler.start()
        for _ in range(args.rounds):  # interleaved: background load falls on both alike
            copies.append(local_copy_seconds(source, tmp / "files" / "copy.bin"))
            upload_s, body = upload(base, token, source, args.piece_mib * MIB)
            uploads.append(upload_s)
            if body["sha256"] != expected or body["offset"] != size:
                raise SystemExit(f"the server has {body['offset']} bytes, sha256 {body['sha256']}")
        sampler.running = False
        sampler.join()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    copy_s, upload_s = statistics.median(copies), statistics.median(uploads)
    growth_mib = sampler.growth() / MIB
    ratio = copy_s / upload_s
    say(f"{args.size_mib} MiB in {args.piece_mib} MiB pieces; {os.cpu_count()} cores")
    say(f"  local copy: {copy_s:.2f} s ({size / MIB / copy_s:.0f} MiB/s), median of {len(copies)}")
    say(
        f"  upload:     {upload_s:.2f} s ({size / MIB / upload_s:.0f} MiB/s), median of "
        f"{len(uploads)}, sha256 verified"
    )
    memory_ok, speed_ok = growth_mib <= 64, ratio >= 0.8
    say(
        f"  server RSS growth: {growth_mib:.1f} MiB (target <= 64: {'met' if memory_ok else 'NOT met'})"
    )
    say(
        f"  throughput: {ratio:.0%} of the copy (target >= 80 %: {'met' if speed_ok else 'NOT met'})"
    )
    return memory_ok and speed_ok


def main() -> int:
    parser = argparse.ArgumentParser(description="A large file through the tus protocol.")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--piece-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-upload-") as name,
        scratch_database("upload") as database_url,
    ):
        tmp = Path(name)
        (tmp / "files").mkdir()
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DJANGO_DEBUG": "false",
            "DJANGO_LOG_LEVEL": "WARNING",
            "HELDOUT_DATA_DIR": str(tmp),
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": "filesystem://",
            "HELDOUT_MAX_UPLOAD_BYTES": str(args.size_mib * MIB),
        }
        setup_django(env)
        say(f"load average at the start: {os.getloadavg()[0]:.2f}")
        met = measure(args, env, tmp)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
