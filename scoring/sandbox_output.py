"""The sandbox's /output: a size-capped tmpfs inside the engine, copied out after the run.

Contract:
- /output is an anonymous Docker volume of type tmpfs (`output_volume_options`): the kernel
  refuses writes past its size (ENOSPC), and past MAX_OUTPUT_ENTRIES files and folders,
  whatever the worker's uid. Nothing the sandbox writes ever lands on the host's disk
  directly, so no folder it makes unreadable can outlive the run.
- When the command has finished (the container is frozen by then, so nothing changes while
  it is read), `copy_output` streams the engine's tar of /output and writes regular files
  and folders only under the worker's own output folder, owned by the worker, 0644/0755.
  Links, devices and fifos are dropped; names that would leave the folder are dropped.
  It stops reading past the limit and reports the run as over it.
- Nothing here puts a host path into a message.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

PAGE_BYTES = 4096
# Files and folders /output may hold (its tmpfs nr_inodes). Bounds the tar's headers too.
MAX_OUTPUT_ENTRIES = 10_000
SANDBOX_UID = 65534


def tmpfs_size(limit_bytes: int) -> int:
    """The tmpfs size for a limit: one page over it, so that a run which filled it is
    recognisably over the limit, while a run that wrote exactly the limit is not."""
    return -(-limit_bytes // PAGE_BYTES) * PAGE_BYTES + PAGE_BYTES


def tmpfs_options(limit_bytes: int, *, entries: int | None = None) -> str:
    """Mount options for a sandbox tmpfs: capped, owned by the sandbox user.

    `uid`/`gid` rather than `mode`: runc gives a tmpfs the mode of the folder it covers in
    the image (a 0755 root /tmp stays 0755), but the owner always may write and chmod.
    """
    options = f"size={tmpfs_size(limit_bytes)},uid={SANDBOX_UID},gid={SANDBOX_UID}"
    return f"{options},nr_inodes={entries}" if entries else options


def output_volume_options(limit_bytes: int) -> dict[str, str]:
    """The local driver's options for /output's anonymous volume (a tmpfs)."""
    options = tmpfs_options(limit_bytes, entries=MAX_OUTPUT_ENTRIES)
    return {"type": "tmpfs", "device": "tmpfs", "o": f"{options},mode=0755"}


class _Chunks(io.RawIOBase):
    """A readable file over an iterator of byte chunks, stopping past `limit` bytes."""

    def __init__(self, chunks: Iterable[bytes], limit: int) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""
        self.limit = limit
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        self.read_bytes += size
        if self.read_bytes > self.limit:
            raise _OverLimit
        return size


class _OverLimit(Exception):
    pass


def copy_output(chunks: Iterable[bytes], dest: Path, limit_bytes: int) -> bool:
    """Write the tar of /output (`chunks`, as the engine's archive API streams it) under
    dest. Returns True when the output is over `limit_bytes`; dest is then left empty,
    since part of an output must not be read as if it were all of it."""
    dest.mkdir(parents=True, exist_ok=True)
    over = _extract(chunks, dest, limit_bytes)
    if over:
        shutil.rmtree(dest)
        dest.mkdir()
    return over


def _extract(chunks: Iterable[bytes], dest: Path, limit_bytes: int) -> bool:
    # Headers are 512 bytes per entry, and each file is padded to 512 bytes.
    stream_limit = tmpfs_size(limit_bytes) + (MAX_OUTPUT_ENTRIES + 2) * 2048
    reader = _Chunks(chunks, stream_limit)
    used = 0
    try:
        with tarfile.open(fileobj=io.BufferedReader(reader), mode="r|") as archive:
            for member in archive:
                relative = _inside(member.name)
                if relative is None:
                    continue
                if member.isreg():
                    # What the file holds in tmpfs pages: how the kernel counted it.
                    used += -(-member.size // PAGE_BYTES) * PAGE_BYTES
                    if used > limit_bytes:
                        return True
                    source = archive.extractfile(member)
                    if source is not None:
                        _write_file(dest / relative, source)
                elif member.isdir():
                    (dest / relative).mkdir(mode=0o755, parents=True, exist_ok=True)
    except _OverLimit:
        return True
    return False


def _inside(name: str) -> PurePosixPath | None:
    """The member's path under /output (the archive's top folder is `output`), or None
    for the folder itself and for names that would leave it."""
    parts = PurePosixPath(name).parts[1:]
    if not parts or any(part in ("", ".", "..") or "/" in part for part in parts):
        return None
    if name.startswith("/"):
        return None
    return PurePosixPath(*parts)


def _write_file(path: Path, source: IO[bytes]) -> None:
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(path, "xb") as target:
        shutil.copyfileobj(source, target)
    path.chmod(0o644)
