"""Resumable uploads (tus, docs/uploads.md): create, append, delete, expire, and turn a
complete upload into a submission.

Contracts:
- an unfinished upload's bytes live in the web host's staging folder
  (HELDOUT_UPLOAD_STAGING_DIR, at `Upload.file`'s name): appends seek and truncate, which an
  object store can't do. `offset` bytes of it are valid (a dead writer may have left more
  on disk: the next append truncates them). Once complete and submitted, the bytes are
  saved into the private storage (any backend) through the storage API. With several web
  hosts, a PATCH must reach the host that holds the upload (sticky routing or a shared
  staging folder; docs/production.md);
- one writer at a time: `upload_append` claims the row with a conditional UPDATE on
  (offset, lock) and refreshes the lock as data arrives; a lock older than LOCK_STALE is
  free again;
- memory per append is a few chunks (competitions/services/upload_writer.py: one received
  while the others are hashed and written), whatever the body's size;
- the offset recorded, and so reported, only counts bytes on disk and fsync'ed
  (upload_writer.PatchWriter.at);
- the bytes a client sent before its connection broke are kept and counted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils._os import safe_join

from competitions import tus
from competitions.middleware import submission_upload_limit
from competitions.models import Competition, Submission, Upload
from competitions.permissions import NotFound
from competitions.services.submissions import _safe_name, submission_create
from competitions.services.upload_writer import PatchWriter, Readable

EXPIRES_AFTER = timedelta(hours=24)
LOCK_STALE = timedelta(seconds=60)
# Unfinished uploads one user may have at a time: each reserves disk space.
MAX_OPEN_UPLOADS = 20


def upload_max_bytes(competition: Competition | None) -> int:
    if competition is None:
        return settings.HELDOUT_MAX_UPLOAD_BYTES
    return submission_upload_limit(competition)


def upload_create(
    *, owner: User, length: int, metadata: dict[str, str], competition: Competition | None
) -> Upload:
    """A new, empty upload of `length` bytes; refused over the limit that applies to it."""
    limit = upload_max_bytes(competition)
    if length > limit:
        raise tus.UploadTooBig(f"The file is larger than the limit of {limit / 2**20:g} MiB.")
    now = timezone.now()
    open_uploads = Upload.objects.filter(owner=owner, expires_at__gt=now).exclude(
        offset=F("length")
    )
    if open_uploads.count() >= MAX_OPEN_UPLOADS:
        raise tus.TooManyUploads(
            f"You have {MAX_OPEN_UPLOADS} unfinished uploads: finish or delete one first."
        )
    name = metadata.get("filename") or metadata.get("name") or "upload"
    upload = Upload(
        owner=owner,
        competition=competition,
        filename=_safe_name(name),
        metadata=metadata,
        length=length,
        created_at=now,
        expires_at=now + EXPIRES_AFTER,
    )
    upload.file.name = f"uploads/{upload.pk}.part"
    upload.full_clean()
    path = staging_path(upload)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "xb"):
        pass
    try:
        upload.save(force_insert=True)
    except BaseException:
        os.unlink(path)  # no row, no file
        raise
    return upload


def upload_for_owner(*, owner: User, upload_id: uuid.UUID | str) -> Upload:
    """The user's own, unexpired upload; anyone else's is as good as missing."""
    try:
        key = uuid.UUID(str(upload_id))
    except ValueError:
        raise NotFound("No such upload.") from None
    upload = Upload.objects.filter(pk=key, owner=owner, expires_at__gt=timezone.now()).first()
    if upload is None:
        raise NotFound("No such upload.")
    return upload


def upload_append(*, upload: Upload, offset: int, length: int, stream: Readable) -> Upload:
    """Write up to `length` bytes read from `stream` at `offset`; returns the upload as it is
    now. Stops early, keeping what arrived, if the stream ends (the client went away)."""
    if offset + length > upload.length:
        raise tus.UploadTooBig(
            f"This upload is {upload.length} bytes; {length} more at {offset} would pass its end."
        )
    token = _claim(upload=upload, offset=offset)
    writer = PatchWriter(
        upload_id=upload.pk, token=token, at=offset, sha=_hashes.resume(upload.pk, offset)
    )
    try:
        writer.copy(stream=stream, path=staging_path(upload), length=length)
    finally:
        # Whatever arrived counts, also when reading the body failed half-way.
        expires_at = timezone.now() + EXPIRES_AFTER
        recorded = Upload.objects.filter(pk=upload.pk, locked_at=writer.token).update(
            offset=writer.at, locked_at=None, expires_at=expires_at
        )
        if recorded and writer.sha is not None:
            _hashes.keep(upload.pk, writer.at, writer.sha)
    if recorded:  # the row is as written just now: no need to read it back
        upload.offset, upload.locked_at, upload.expires_at = writer.at, None, expires_at
    else:
        upload.refresh_from_db()
    if upload.is_complete and not upload.sha256:
        upload.sha256 = _hashes.digest(upload.pk, upload.length) or _file_sha256(
            staging_path(upload)
        )
        upload.save(update_fields=["sha256"])
    return upload


class _HashStates:
    """The sha256 states of uploads this process wrote last, keyed by upload id, with the
    offset each one covers. A client on a keep-alive connection sends its pieces to the same
    process, so the hash of a complete upload is usually known without reading the file
    again; when it isn't (another process wrote a piece), the file is read once at the end.
    The bytes before a recorded offset never change, so a kept state stays valid."""

    KEPT = 64

    def __init__(self) -> None:
        self._states: OrderedDict[uuid.UUID, tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def resume(self, upload_id: uuid.UUID, offset: int) -> Any | None:
        with self._lock:
            found = self._states.pop(upload_id, None)
        if found is not None and found[0] == offset:
            return found[1]
        return hashlib.sha256() if offset == 0 else None

    def keep(self, upload_id: uuid.UUID, offset: int, sha: Any) -> None:
        with self._lock:
            self._states[upload_id] = (offset, sha)
            while len(self._states) > self.KEPT:
                self._states.popitem(last=False)

    def digest(self, upload_id: uuid.UUID, offset: int) -> str | None:
        with self._lock:
            found = self._states.pop(upload_id, None)
        return found[1].hexdigest() if found is not None and found[0] == offset else None

    def forget_all(self) -> None:
        with self._lock:
            self._states.clear()


_hashes = _HashStates()


def _claim(*, upload: Upload, offset: int) -> datetime:
    """Take the write lock if the client's offset is the server's; the lock's timestamp is
    the writer's token (a writer whose lock was taken over stops recording)."""
    now = timezone.now()
    free = Q(locked_at__isnull=True) | Q(locked_at__lt=now - LOCK_STALE)
    claimed = Upload.objects.filter(free, pk=upload.pk, offset=offset).update(locked_at=now)
    if claimed == 1:
        return now
    current = Upload.objects.filter(pk=upload.pk).values_list("offset", flat=True).first()
    if current is None:
        raise NotFound("No such upload.")
    if current != offset:
        raise tus.OffsetMismatch(
            f"The server has {current} bytes of this upload, not {offset}: "
            "send HEAD, then PATCH from its Upload-Offset.",
            extra={"offset": current},
        )
    raise tus.UploadLocked("Another request is writing to this upload; try again shortly.")


def _file_sha256(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(tus.CHUNK_BYTES):
            sha.update(chunk)
    return sha.hexdigest()


def upload_delete(*, upload: Upload) -> None:
    """Termination: the row and the bytes go."""
    path = staging_path(upload) if upload.file.name else None
    upload.delete()
    if path is not None:
        _unlink_quietly(path)


def uploads_delete_expired(*, now: datetime | None = None) -> int:
    """Delete uploads past their expiry (unfinished, or finished but never submitted)."""
    now = now or timezone.now()
    count = 0
    for upload in Upload.objects.filter(expires_at__lte=now).iterator():
        upload_delete(upload=upload)
        count += 1
    return count


class StoredUpload(File):
    """A complete upload as submission_create takes it: moved into place, hash known."""

    def __init__(self, upload: Upload):
        super().__init__(open(staging_path(upload), "rb"), name=upload.filename)  # noqa: SIM115
        self.size = upload.length
        self.sha256 = upload.sha256
        self._path = staging_path(upload)

    def temporary_file_path(self) -> str:
        # A file-system storage moves the staged file into place; others read it.
        return self._path


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def staging_path(upload: Upload) -> str:
    """Where this web host keeps the upload's bytes until it is submitted."""
    return safe_join(settings.HELDOUT_UPLOAD_STAGING_DIR, upload.file.name or "")


def submission_create_from_upload(
    *, competition: Competition, user: User, upload_id: uuid.UUID | str, **fields: str
) -> Submission:
    """submission_create with a complete upload of the user's; the upload is used up."""
    with transaction.atomic():
        found = upload_for_owner(owner=user, upload_id=upload_id)
        # Locked so that two requests can't both submit the same upload.
        upload = Upload.objects.select_for_update().get(pk=found.pk)
        writing = upload.locked_at is not None and upload.locked_at > timezone.now() - LOCK_STALE
        if not upload.is_complete or writing:
            raise tus.UploadIncomplete(
                f"The upload has {upload.offset} of {upload.length} bytes: finish it first."
            )
        limit = upload_max_bytes(competition)
        if upload.length > limit:
            raise tus.UploadTooBig(f"The file is larger than the limit of {limit / 2**20:g} MiB.")
        stored = StoredUpload(upload)
        try:
            submission = submission_create(
                competition=competition, user=user, uploaded_file=stored, **fields
            )
        finally:
            stored.close()
        staged = staging_path(upload)
        upload.delete()  # its bytes now are the submission's
        # Moved into place by a file-system storage; copied by any other: remove the copy.
        transaction.on_commit(lambda: _unlink_quietly(staged))
    return submission
