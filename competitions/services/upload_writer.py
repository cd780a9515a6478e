"""One PATCH body onto an upload's staged file (competitions/services/uploads.py), fast and
durable: the body is received into a few page-aligned buffers while, beside it, one thread
hashes them in order and two write them out.

Contracts:
- `PatchWriter.at` is the offset the caller may record and report: every byte before it is on
  disk and fsync'ed, also when the body ends early (the client went away) or the copy
  fails half-way (a full disk, a lock taken over);
- `PatchWriter.sha` covers exactly the bytes before `at`, or is None (then the file is hashed
  again at the end);
- memory per PATCH is BUFFERS x tus.CHUNK_BYTES, whatever the body's size;
- whole, aligned chunks bypass the page cache (O_DIRECT) where the file system allows it;
  the rest (a piece's unaligned start or end, a file system without O_DIRECT) is written
  through it. Why: on a busy host, a GiB through the page cache costs ~1 s of CPU (copying,
  allocating and writing back pages) and waits behind other programs' dirty pages; written
  directly it costs ~0.1 s and goes at the disk's speed (bench/bench_upload.py).
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import threading
import time as clock
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.utils import timezone

from competitions import tus
from competitions.models import Upload

# While a PATCH streams, its progress is recorded (fsync'ed first) this often: HEAD shows
# it, and the lock stays fresh. A chunk's receiving ends early at this age too, so a slow
# client's bytes are written and recorded without waiting for a whole chunk.
RECORD_EVERY_S = 2.0
# Chunks in flight: one being received, the others being hashed or written.
BUFFERS = 4
WRITERS = 2  # two writes in flight keep a disk busier than one (~25 % faster)
# O_DIRECT needs the file offset, the length and the memory aligned to the device's block.
ALIGN = 4096
# Written through the page cache (no O_DIRECT), the disk is told to start on what was
# written every this many bytes, and the written pages are dropped.
WRITEBACK_BYTES = 8 * 1024 * 1024


class Readable(Protocol):
    """A request body: read(n) gives at most n bytes, b"" at its end."""

    def read(self, size: int, /) -> bytes: ...


class _Disk:
    """The staged file, opened twice: through the page cache, and bypassing it."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY)
        self.direct = _open_direct(path)
        self._opened = [fd for fd in (self.fd, self.direct) if fd is not None]
        self._cached = 0
        self._lock = threading.Lock()

    def write(self, data: memoryview, at: int) -> None:
        direct = self.direct
        if direct is not None and at % ALIGN == 0 and len(data) % ALIGN == 0:
            try:
                _write_all(direct, data, at)
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self.direct = None  # the file system refuses direct writes after all
        _write_all(self.fd, data, at)
        with self._lock:
            self._cached += len(data)
            if self._cached < WRITEBACK_BYTES:
                return
            self._cached = 0
        _write_back(self.fd)

    def truncate(self, length: int) -> None:
        os.ftruncate(self.fd, length)

    def sync(self) -> None:
        os.fsync(self.fd)  # the inode's: the direct writes' blocks and size too

    def close(self) -> None:
        for fd in self._opened:
            os.close(fd)


def _open_direct(path: str) -> int | None:
    try:
        return os.open(path, os.O_WRONLY | os.O_DIRECT)
    except (OSError, AttributeError):  # tmpfs, macOS: no O_DIRECT
        return None


def _write_all(fd: int, data: memoryview, at: int) -> None:
    while data:
        written = os.pwrite(fd, data, at)
        data, at = data[written:], at + written


def _write_back(fd: int) -> None:
    """Have the disk start writing what is dirty, and drop the pages already written
    (Linux's DONTNEED starts write-back, then drops the clean pages): the fsync that ends
    the PATCH has little left, and the upload doesn't fill the page cache."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


@dataclass
class _Chunk:
    length: int
    hashed: Future | None
    written: Future


@dataclass
class PatchWriter:
    """One PATCH's progress: `at` bytes are on disk; `token` is its lock's timestamp."""

    upload_id: uuid.UUID
    token: datetime
    at: int
    sha: Any | None  # the hash of bytes [0, at), when this process knows it
    # Bytes past `at` written (their chunks settled), not yet fsync'ed.
    written: int = field(default=0, init=False)

    def copy(self, *, stream: Readable, path: str, length: int) -> None:
        """Write up to `length` bytes of `stream` at `at`, dropping what the file held past
        it. Stops early, keeping what arrived, if the stream ends (the client went away)."""
        disk = _Disk(path)
        try:
            disk.truncate(self.at)
            with (
                ThreadPoolExecutor(max_workers=1) as hasher,
                ThreadPoolExecutor(max_workers=WRITERS) as writers,
            ):
                self._pipeline(stream, disk, self.at + length, hasher.submit, writers.submit)
        finally:
            disk.close()

    def _pipeline(
        self, stream: Readable, disk: _Disk, end: int, hash_: Callable, write: Callable
    ) -> None:
        """Receive chunk after chunk while the oldest ones are hashed (in order) and
        written; a chunk's buffer is taken again once it is both."""
        # Anonymous maps: page-aligned, as O_DIRECT wants.
        buffers = [mmap.mmap(-1, tus.CHUNK_BYTES) for _ in range(BUFFERS)]
        chunks: deque[_Chunk] = deque()  # in flight, oldest first; they end at `received`
        received, taken, failed = self.at, 0, True
        record_by = clock.monotonic() + RECORD_EVERY_S
        try:
            while received < end or chunks:
                if len(chunks) == BUFFERS or received == end:
                    self._settle(chunks)
                    continue
                # Chunks end on multiples of CHUNK_BYTES: whole ones are aligned.
                size = min(tus.CHUNK_BYTES - received % tus.CHUNK_BYTES, end - received)
                view = memoryview(buffers[taken % BUFFERS])[:size]
                taken += 1
                got = _fill(stream, view, until=record_by)
                if got:
                    data = view[:got]
                    hashed = hash_(self.sha.update, data) if self.sha is not None else None
                    chunks.append(_Chunk(got, hashed, write(disk.write, data, received)))
                    received += got
                if clock.monotonic() >= record_by:
                    self._record(chunks, disk)
                    record_by = clock.monotonic() + RECORD_EVERY_S
                elif got < size:
                    end = received  # the body ended early: settle what arrived
            failed = False
        finally:
            self._finish(chunks, disk, failed=failed)

    def _settle(self, chunks: deque[_Chunk]) -> None:
        """Wait for the oldest chunk: hashed and written, it counts (not yet durable) and
        leaves the queue; one that failed stays first, so nothing after it ever counts."""
        chunk = chunks[0]
        if chunk.hashed is not None:
            chunk.hashed.result()
        chunk.written.result()
        self.written += chunks.popleft().length

    def _sync(self, disk: _Disk) -> None:
        disk.sync()
        self.at += self.written
        self.written = 0

    def _record(self, chunks: deque[_Chunk], disk: _Disk) -> None:
        """Every chunk in flight settled and fsync'ed, then the offset recorded."""
        while chunks:
            self._settle(chunks)
        self._sync(disk)
        refreshed = timezone.now()
        kept = Upload.objects.filter(pk=self.upload_id, locked_at=self.token).update(
            offset=self.at, locked_at=refreshed
        )
        if kept != 1:
            raise tus.UploadLocked("This upload's lock went stale and was taken over.")
        self.token = refreshed

    def _finish(self, chunks: deque[_Chunk], disk: _Disk, *, failed: bool) -> None:
        """The bytes settled count once fsync'ed. After a failure, those before the first
        failed chunk do; the hash, which may be ahead of them, is dropped (chunks still in
        flight finish before the executors close; the next PATCH truncates them)."""
        if failed:
            self.sha = None
            with contextlib.suppress(Exception):
                while chunks:
                    self._settle(chunks)
            with contextlib.suppress(OSError):
                self._sync(disk)
        else:
            self._sync(disk)


def _fill(stream: Readable, view: memoryview, *, until: float) -> int:
    """Receive into `view` until it is full, the body ends or the connection breaks, or
    the clock passes `until` (a slow client's bytes are not held back for long)."""
    filled = 0
    readinto = getattr(stream, "readinto", None)
    while filled < len(view):
        try:
            if callable(readinto):
                got = readinto(view[filled:])
            else:
                data = stream.read(len(view) - filled)
                got = len(data)
                view[filled : filled + got] = data
        except OSError:
            break  # the connection broke: keep what we have
        if not got:
            break
        filled += got
        if clock.monotonic() >= until:
            break
    return filled
