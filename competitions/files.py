"""Stored files through Django's storage API only, so any backend works (file system, S3).

Contract: nothing in competitions/ or scoring/ asks a stored file for `.path` (a worker host
may have no shared disk with the web process). Code that needs a local file asks for
`local_copy` into a scratch folder it owns (the attempt work folder, a TemporaryDirectory)
and that folder's removal cleans the copy up. Hashes are streamed from the storage.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.files.storage import FileSystemStorage, Storage
from django.db.models.fields.files import FieldFile
from django.utils._os import safe_join

CHUNK = 1 << 20


def _storage_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # the file-system default needs no boto
        return (OSError,)
    return (OSError, BotoCoreError, ClientError)


# What a storage raises when it, not the file, is at fault (judging.heartbeat retries these).
STORAGE_ERRORS = _storage_errors()


def local_copy(field_file: FieldFile, dest_dir: Path, name: str | None = None) -> Path:
    """Stream the stored file into `dest_dir` (as `name`, or its own base name); the path."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / (name or os.path.basename(field_file.name or "file"))
    with field_file.storage.open(_name(field_file), "rb") as source, open(target, "wb") as out:
        while chunk := source.read(CHUNK):
            out.write(chunk)
    return target


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private temporary folder for copies made outside a scoring attempt, removed after."""
    with tempfile.TemporaryDirectory(prefix="heldout-files-") as tmp:
        yield Path(tmp)


@contextmanager
def local_file(field_file: FieldFile) -> Iterator[Path]:
    """A local copy of one stored file for the duration of the block."""
    with scratch_dir() as tmp:
        yield local_copy(field_file, tmp)


def sha256_of(field_file: FieldFile) -> str:
    """The sha256 of the stored bytes, read in chunks from the storage."""
    sha = hashlib.sha256()
    with field_file.storage.open(_name(field_file), "rb") as source:
        while chunk := source.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def is_file_system(storage: Storage) -> bool:
    """Whether the storage writes to a local disk (fsync and open-in-place make sense)."""
    return isinstance(storage, FileSystemStorage)


def fsync_stored(field_file: FieldFile) -> None:
    """On a file-system storage, flush the saved bytes to the disk before the row commits;
    an object store has them durable once `save` returned."""
    storage = field_file.storage
    if not isinstance(storage, FileSystemStorage):
        return
    fd = os.open(safe_join(storage.location, _name(field_file)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def presigned_url(field_file: FieldFile, *, filename: str, expire_s: int = 300) -> str | None:
    """A short-lived URL the client downloads from directly, when the backend signs URLs
    (S3-style storages); None on a file system."""
    storage: Any = field_file.storage
    if is_file_system(storage) or not hasattr(storage, "bucket_name"):
        return None
    quoted = "".join(ch for ch in filename if ch not in '"\\\r\n')
    params = {"ResponseContentDisposition": f'attachment; filename="{quoted}"'}
    return str(storage.url(_name(field_file), parameters=params, expire=expire_s))


def stored_size(field_file: FieldFile) -> int:
    """The stored file's size, asked of the storage (a stat, or a HEAD: not the bytes)."""
    return int(field_file.storage.size(_name(field_file)))


def _name(field_file: FieldFile) -> str:
    if not field_file.name:
        raise ValueError("the field holds no file")
    return field_file.name
