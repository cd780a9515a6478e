"""The writer of one PATCH body (competitions/services/upload_writer.py): what it writes, where
(bypassing the page cache or not), and the offset it may report after a failure or while a
slow body streams. The protocol around it is tests/competitions/test_uploads_tus.py's."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import random
import time

import pytest
from django.utils import timezone

from competitions import tus
from competitions.models import Upload
from competitions.services import upload_writer
from competitions.services.upload_writer import PatchWriter
from competitions.services.uploads import staging_path, upload_create

MIB = tus.CHUNK_BYTES


class ReadIntoBody:
    """A body read like gunicorn's socket (uploads.SocketBody): readinto, a piece at a time."""

    def __init__(self, content: bytes, piece: int, pause: float = 0.0) -> None:
        self.stream = io.BytesIO(content)
        self.piece, self.pause = piece, pause
        self.on_read = lambda: None

    def readinto(self, buffer) -> int:
        self.on_read()
        time.sleep(self.pause)
        view = memoryview(buffer)[: self.piece]
        return self.stream.readinto(view)

    def read(self, size: int) -> bytes:  # the Protocol's; readinto is used when present
        raise AssertionError("read() while readinto() is there")


@pytest.fixture
def staged(tmp_path, monkeypatch):
    monkeypatch.setattr(upload_writer, "RECORD_EVERY_S", 3600.0)  # no row to record to
    path = tmp_path / "upload.part"
    path.write_bytes(b"")
    return path


class Writes(list):
    """(fd kind, offset, length) of every write; `opened` names the direct fds."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: dict[int, str] = {}


@pytest.fixture
def routed(monkeypatch):
    """Every write's (fd kind, offset, length); the direct file is an ordinary one here,
    so that the routing is the same on any file system."""
    writes = Writes()
    opened = writes.opened
    monkeypatch.setattr(upload_writer, "_open_direct", lambda path: _remember(path, opened))
    real = upload_writer._write_all

    def spy(fd: int, data: memoryview, at: int) -> None:
        writes.append((opened.get(fd, "cached"), at, len(data)))
        real(fd, data, at)

    monkeypatch.setattr(upload_writer, "_write_all", spy)
    return writes


def _remember(path: str, opened: dict[int, str]) -> int:
    fd = os.open(path, os.O_WRONLY)
    opened[fd] = "direct"
    return fd


def _writer(at: int = 0, sha=None) -> PatchWriter:
    return PatchWriter(upload_id=None, token=timezone.now(), at=at, sha=sha)  # type: ignore[arg-type]


def test_whole_chunks_bypass_the_page_cache_and_an_unaligned_start_and_end_do_not(staged, routed):
    head = random.Random(1).randbytes(1000)
    staged.write_bytes(head + b"stale bytes past the offset")
    content = random.Random(2).randbytes(3 * MIB)
    writer = _writer(at=1000)

    writer.copy(stream=ReadIntoBody(content, piece=300_000), path=str(staged), length=len(content))

    assert writer.at == 1000 + len(content)
    assert staged.read_bytes() == head + content
    assert sorted(routed, key=lambda write: write[1]) == [
        ("cached", 1000, MIB - 1000),
        ("direct", MIB, MIB),
        ("direct", 2 * MIB, MIB),
        ("cached", 3 * MIB, 1000),
    ]


def test_the_hash_covers_every_byte_of_a_body_read_with_read_or_readinto(staged):
    content = random.Random(3).randbytes(2 * MIB + 12345)
    for body in (io.BytesIO(content), ReadIntoBody(content, piece=65536)):
        staged.write_bytes(b"")
        writer = _writer(sha=hashlib.sha256())
        writer.copy(stream=body, path=str(staged), length=len(content))
        assert writer.sha is not None
        assert writer.sha.hexdigest() == hashlib.sha256(content).hexdigest()
        assert staged.read_bytes() == content


def test_a_body_that_ends_early_keeps_what_arrived_and_its_hash(staged):
    content = random.Random(4).randbytes(MIB + 5000)
    writer = _writer(sha=hashlib.sha256())

    writer.copy(stream=io.BytesIO(content), path=str(staged), length=3 * MIB)

    assert writer.at == len(content)
    assert writer.sha is not None
    assert writer.sha.hexdigest() == hashlib.sha256(content).hexdigest()
    assert staged.read_bytes() == content


def test_a_failed_write_leaves_the_offset_at_the_chunks_before_it_and_drops_the_hash(
    staged, routed, monkeypatch
):
    content = random.Random(5).randbytes(6 * MIB)
    real = upload_writer._write_all

    def failing(fd: int, data: memoryview, at: int) -> None:
        if at == 2 * MIB:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data, at)

    monkeypatch.setattr(upload_writer, "_write_all", failing)
    writer = _writer(sha=hashlib.sha256())

    with pytest.raises(OSError, match="No space"):
        writer.copy(stream=io.BytesIO(content), path=str(staged), length=len(content))

    assert writer.at == 2 * MIB
    assert writer.sha is None  # it may have hashed chunks past the offset
    assert staged.read_bytes()[: 2 * MIB] == content[: 2 * MIB]


def test_a_file_system_refusing_direct_writes_gets_them_through_the_page_cache(
    staged, routed, monkeypatch
):
    content = random.Random(6).randbytes(3 * MIB)
    real = upload_writer._write_all
    refused: list[int] = []

    def refusing(fd: int, data: memoryview, at: int) -> None:
        real(fd, data, at)
        if fd in routed.opened:
            refused.append(at)
            raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(upload_writer, "_write_all", refusing)
    writer = _writer(sha=hashlib.sha256())

    writer.copy(stream=io.BytesIO(content), path=str(staged), length=len(content))

    assert writer.at == len(content)
    assert staged.read_bytes() == content
    assert 1 <= len(refused) <= upload_writer.WRITERS  # then no more direct writes
    assert {at for kind, at, _ in routed if kind == "cached"} == {0, MIB, 2 * MIB}


@pytest.mark.django_db
def test_a_slow_body_records_its_progress_mid_chunk_and_only_bytes_fsynced(
    participant, settings, tmp_path, monkeypatch
):
    settings.HELDOUT_UPLOAD_STAGING_DIR = str(tmp_path)
    content = random.Random(7).randbytes(100_000)
    upload = upload_create(owner=participant, length=len(content), metadata={}, competition=None)
    token = timezone.now()
    Upload.objects.filter(pk=upload.pk).update(locked_at=token)
    synced: list[int] = []  # the file's size at each fsync
    real_fsync = os.fsync
    monkeypatch.setattr(upload_writer, "RECORD_EVERY_S", 0.05)

    def fsync(fd: int) -> None:
        real_fsync(fd)
        synced.append(os.fstat(fd).st_size)

    monkeypatch.setattr(upload_writer.os, "fsync", fsync)
    seen: list[tuple[int, int]] = []  # (offset recorded, the largest size fsync'ed by then)
    body = ReadIntoBody(content, piece=10_000, pause=0.02)
    body.on_read = lambda: seen.append(
        (Upload.objects.get(pk=upload.pk).offset, max(synced, default=0))
    )
    writer = PatchWriter(upload_id=upload.pk, token=token, at=0, sha=hashlib.sha256())

    writer.copy(stream=body, path=staging_path(upload), length=len(content))

    assert writer.at == len(content)
    progress = {offset for offset, _ in seen}
    assert len(progress - {0}) >= 2, seen  # recorded several times within one chunk
    assert all(offset <= fsynced for offset, fsynced in seen), seen
