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
   has hashed every byte, written it and fsync'ed it by then), against a plain local copy
   of the same file into the same file system (the staging folder's): shutil.copyfile
   (sendfile on Linux, what `cp` does) then fsync, as durable as the upload. The ratio of
   the medians. Target: >= 80 % of the copy's throughput.

Fairness: the cases run once per round each, in rotating order, and read the same cached
file; dirty pages are flushed (sync) before each. A third case, "direct copy", copies the
file as the server writes an upload (competitions/services/upload_writer.py: 1 MiB chunks
bypassing the page cache, O_DIRECT, two in flight, then fsync): the fastest this disk
takes the bytes, printed beside the target's ratio. The plain copy goes through the page
cache, so on a host where other programs write a lot it waits behind their dirty pages
(and so runs slower than the direct copy); on a quiet one both go at the disk's speed.

Also printed: the CPU each case used (the copy's process; the client's and the gunicorn
workers' for the upload). The upload's is mostly SHA-256 (~0.7 s per GiB with the CPU's
SHA instructions, on one thread: its critical path) and the network's copies on both
sides; on a busy machine it gets that CPU slowly, so it loses to the load more than the
copies do.

Not in the path: nginx and TLS. Production puts nginx in front (deploy/nginx.conf), which
receives each piece whole (to its temporary folder) before passing it on at local speed;
that is the proxy's cost on its host, the same for any upload endpoint, and the client's
link is then the limit, not the server. The bench measures what the application does with
the bytes: gunicorn, Django and the upload service.

Then the last upload is submitted to a competition and the submission's time reported:
on a file-system storage the staged file is renamed into place, not copied.

The file is random bytes; each upload's sha256, as the server reports it, is checked.
Linux only (/proc). On a shared machine the times vary from round to round: the
per-round ratios and the load average are printed too.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import mmap
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import requests
from benchlib import say, scratch_database, setup_django, start_gunicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "client"))  # this checkout's client, not an installed one
MIB = 2**20
CASES = ("copy", "direct copy", "upload")


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


def direct_copy_seconds(source: Path, target: Path) -> float:
    """The copy as the upload writes (competitions/services/upload_writer.py): 1 MiB
    chunks bypassing the page cache (O_DIRECT), two in flight, then fsync."""
    os.sync()
    chunk = 2**20
    started = time.perf_counter()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT)
    try:
        with source.open("rb") as f, ThreadPoolExecutor(max_workers=2) as writers:
            buffers = [mmap.mmap(-1, chunk) for _ in range(2)]
            pending: list[Future] = []
            for n in itertools.count():
                if len(pending) == 2:
                    pending.pop(0).result()
                view = memoryview(buffers[n % 2])
                got = f.readinto(view)
                if not got:
                    break
                # A last partial chunk: a whole one written, the file cut back after.
                pending.append(writers.submit(os.pwrite, fd, view, n * chunk))
            for future in pending:
                future.result()
        os.ftruncate(fd, source.stat().st_size)
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
    seconds: dict[str, list[float]] = {case: [] for case in CASES}
    # CPU seconds of (this process: the copy, or the client; the gunicorn workers) per case.
    cpu: dict[str, list[tuple[float, float]]] = {case: [] for case in CASES}
    loads: list[float] = []
    proc, base = start_gunicorn(env, tmp / "gunicorn.log")
    try:
        requests.get(base + "/", timeout=10)  # every worker imports the app on its first request
        sampler = RssSampler(worker_pids(proc.pid))
        sampler.start()
        uploader = Uploader(base, token, source, expected)
        url = ""
        for n in range(args.rounds):
            # Rotating order: no case always runs right after another.
            for case in CASES[n % 3 :] + CASES[: n % 3]:
                own, server = own_cpu_seconds(), cpu_seconds(sampler.pids)
                if case == "copy":
                    seconds[case].append(copy_seconds(source, tmp / "files" / "copy.bin"))
                elif case == "direct copy":
                    seconds[case].append(direct_copy_seconds(source, tmp / "files" / "copy.bin"))
                else:
                    elapsed, url = uploader.seconds(keep=n == args.rounds - 1)
                    seconds[case].append(elapsed)
                cpu[case].append((own_cpu_seconds() - own, cpu_seconds(sampler.pids) - server))
            loads.append(os.getloadavg()[0])
            copy_s, direct_s, upload_s = (seconds[case][-1] for case in CASES)
            say(
                f"  round {n + 1}: copy {copy_s:.2f} s, direct copy {direct_s:.2f} s, "
                f"upload {upload_s:.2f} s ({copy_s / upload_s:.0%} of the copy, "
                f"{direct_s / upload_s:.0%} of the direct copy); load {loads[-1]:.1f}"
            )
        submit_s = submit_seconds(uploader, url, user)
        sampler.running = False
        sampler.join()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    say_cpu(cpu)
    say(f"  load average (1 min) after each round: {', '.join(f'{x:.1f}' for x in loads)}")
    return report(args, size, seconds, sampler.growth() / MIB, submit_s)


def say_cpu(cpu: dict[str, list[tuple[float, float]]]) -> None:
    """The CPU each case used (medians): what a quiet machine's times are bounded by."""
    copy = statistics.median(c for c, _ in cpu["copy"])
    direct = statistics.median(c for c, _ in cpu["direct copy"])
    client = statistics.median(c for c, _ in cpu["upload"])
    server = statistics.median(s for _, s in cpu["upload"])
    say(
        f"  CPU used, medians: copy {copy:.2f} s; direct copy {direct:.2f} s; "
        f"upload {client + server:.2f} s (client {client:.2f} s, server {server:.2f} s)"
    )


def report(
    args: argparse.Namespace,
    size: int,
    seconds: dict[str, list[float]],
    growth_mib: float,
    submit_s: float,
) -> bool:
    copy_s, direct_s, upload_s = (statistics.median(seconds[case]) for case in CASES)
    ratio = copy_s / upload_s
    say(f"{args.size_mib} MiB, {args.rounds} rounds; {os.cpu_count()} cores; medians:")
    say(f"  local copy:  {copy_s:.2f} s ({size / MIB / copy_s:.0f} MiB/s)")
    say(f"  direct copy: {direct_s:.2f} s ({size / MIB / direct_s:.0f} MiB/s)")
    say(f"  upload:      {upload_s:.2f} s ({size / MIB / upload_s:.0f} MiB/s), sha256 verified")
    say(f"  submitted (staged file into storage): {submit_s:.2f} s")
    memory_ok, speed_ok = growth_mib <= 64, ratio >= 0.8
    say(
        f"  server RSS growth: {growth_mib:.1f} MiB (target <= 64: {'met' if memory_ok else 'NOT met'})"
    )
    say(
        f"  throughput: {ratio:.0%} of the copy (target >= 80 %: {'met' if speed_ok else 'NOT met'}); "
        f"{direct_s / upload_s:.0%} of the direct copy"
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
