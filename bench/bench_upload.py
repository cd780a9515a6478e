"""Benchmark: one large file through the resumable upload protocol (tus, docs/uploads.md).

    .venv/bin/python bench/bench_upload.py [--size-mib 1024] [--rounds 5]

gunicorn as in production (config/gunicorn.py: 2 workers x 8 threads) on loopback, a
PostgreSQL database of the run's own (bench/benchlib.py, dropped at the end), a temporary
data folder.
The upload is the `heldout` client's (client/heldout/transfer.py, from this checkout), as
`heldout submit` sends it. Measured in one run, against issue 13's targets:

1. server memory: the largest growth of any gunicorn worker's resident set (sampled every
   50 ms from /proc) over its size after a first small request, over every round.
   Target: <= 64 MiB.
2. throughput: the time from creating the upload to the last PATCH's answer (the server
   has hashed and fsync'ed every byte by then), against a plain local copy of the same file
   into the same folder: shutil.copyfile (sendfile on Linux) then fsync, as durable as
   the upload. Both run once per round, in alternating order; the ratio of the medians.
   Target: >= 80 % of the copy's throughput.

Also printed: the CPU time each case used (the copy's process; the client's and the
gunicorn workers' for the upload). On a busy machine the upload, with more CPU work than
the copy (SHA-256 of every byte, the network on both sides), loses more to the load: its
CPU time says what it needs on a quiet one.

Then the last upload is submitted to a competition and the submission's time reported:
on a file-system storage the staged file is renamed into place, not copied.

The file is random bytes; each upload's sha256, as the server reports it, is checked.
Linux only (/proc). The page cache is not dropped: both read a cached file; dirty pages are
flushed (sync) before each. On a shared machine the times vary from round to round: the
per-round ratios are printed too.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from benchlib import say, scratch_database, setup_django

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "client"))  # this checkout's client, not an installed one
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


def copy_seconds(source: Path, target: Path) -> float:
    os.sync()  # what earlier writes left dirty is not this copy's to flush
    started = time.perf_counter()
    shutil.copyfile(source, target)
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by these processes, this one's by os.times."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


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


def start_gunicorn(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.py"]
    command += ["--bind", f"127.0.0.1:{port}", "--access-logfile", "-"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(base + "/", timeout=2)
            return proc, base
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"gunicorn did not start:\n{log.read_text()[-3000:]}")


class Uploader:
    """The heldout client's resumable upload, timed, its result checked."""

    def __init__(self, base: str, token: str, source: Path, expected: str):
        from heldout.client import Client

        self.client = Client(base, token, timeout=600)
        self.source, self.expected = source, expected

    def seconds(self, *, keep: bool = False) -> tuple[float, str]:
        from heldout import transfer

        os.sync()
        started = time.perf_counter()
        upload = self.client.upload(self.source)
        elapsed = time.perf_counter() - started
        body = self.client.http.json("GET", upload.url, headers=transfer.TUS)
        if body["sha256"] != self.expected or body["offset"] != self.source.stat().st_size:
            raise SystemExit(f"the server has {body['offset']} bytes, sha256 {body['sha256']}")
        if not keep:  # its disk space is the next round's
            self.client.http.request("DELETE", upload.url, headers=transfer.TUS)
        return elapsed, upload.url


def submit_seconds(uploader: Uploader, upload_url: str, user) -> float:
    """Submit a complete upload to a fresh competition: the staged file goes into storage."""
    from competitions.services.teams import competition_join
    from tests import factories

    organizer = factories.make_user("bench-organizer", staff=True)
    competition = factories.make_competition(slug="bench-upload", organizers=[organizer])
    competition_join(competition=competition, user=user, accept_rules=True)
    started = time.perf_counter()
    submission = uploader.client.submit_upload("bench-upload", upload_url)
    elapsed = time.perf_counter() - started
    if submission.sha256 != uploader.expected:
        raise SystemExit(f"the submission's sha256 is {submission.sha256}")
    return elapsed


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
    # CPU seconds of (this process: the copy, or the client; the gunicorn workers) per case.
    cpu: dict[str, list[tuple[float, float]]] = {"copy": [], "upload": []}
    proc, base = start_gunicorn(env, tmp / "gunicorn.log")
    try:
        requests.get(base + "/", timeout=10)  # every worker imports the app on its first request
        sampler = RssSampler(worker_pids(proc.pid))
        sampler.start()
        uploader = Uploader(base, token, source, expected)
        url = ""
        for n in range(args.rounds):
            # Alternating order: neither always runs right after the other.
            for case in ("copy", "upload") if n % 2 == 0 else ("upload", "copy"):
                own, server = own_cpu_seconds(), cpu_seconds(sampler.pids)
                if case == "copy":
                    copies.append(copy_seconds(source, tmp / "files" / "copy.bin"))
                else:
                    elapsed, url = uploader.seconds(keep=n == args.rounds - 1)
                    uploads.append(elapsed)
                cpu[case].append((own_cpu_seconds() - own, cpu_seconds(sampler.pids) - server))
            say(
                f"  round {n + 1}: copy {copies[-1]:.2f} s, upload {uploads[-1]:.2f} s "
                f"({copies[-1] / uploads[-1]:.0%}); load {os.getloadavg()[0]:.1f}"
            )
        submit_s = submit_seconds(uploader, url, user)
        sampler.running = False
        sampler.join()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    say_cpu(cpu)
    return report(args, size, copies, uploads, sampler.growth() / MIB, submit_s)


def say_cpu(cpu: dict[str, list[tuple[float, float]]]) -> None:
    """The CPU each case used (medians): what a quiet machine's times are bounded by."""
    copy = statistics.median(c for c, _ in cpu["copy"])
    client = statistics.median(c for c, _ in cpu["upload"])
    server = statistics.median(s for _, s in cpu["upload"])
    say(
        f"  CPU used, medians: copy {copy:.2f} s; upload {client + server:.2f} s "
        f"(client {client:.2f} s, server {server:.2f} s)"
    )


def report(
    args: argparse.Namespace,
    size: int,
    copies: list[float],
    uploads: list[float],
    growth_mib: float,
    submit_s: float,
) -> bool:
    copy_s, upload_s = statistics.median(copies), statistics.median(uploads)
    ratio = copy_s / upload_s
    say(f"{args.size_mib} MiB, {args.rounds} rounds; {os.cpu_count()} cores; medians:")
    say(f"  local copy: {copy_s:.2f} s ({size / MIB / copy_s:.0f} MiB/s)")
    say(f"  upload:     {upload_s:.2f} s ({size / MIB / upload_s:.0f} MiB/s), sha256 verified")
    say(f"  submitted (staged file into storage): {submit_s:.2f} s")
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
    parser.add_argument("--rounds", type=int, default=5)
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
