"""The tus 1.0 resumable-upload protocol (https://tus.io/protocols/resumable-upload),
core + creation + termination + expiration: header names, parsing and its errors.

No Django here beyond settings-free helpers; the endpoints are competitions/api/uploads.py,
the storage and locking competitions/services/uploads.py, the contract for clients
docs/uploads.md. Why our own: the Django tus libraries found (django-tus, drf-tus) are
unmaintained for Django 5, read each PATCH body into memory, and have no notion of an
upload's owner.
"""

from __future__ import annotations

import base64
import binascii

from competitions.errors import ApplicationError

VERSION = "1.0.0"
EXTENSIONS = "creation,termination,expiration"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
# How much of a PATCH body is read, hashed and written at a time: memory per request stays
# at a few of these (competitions/services/upload_writer.BUFFERS).
CHUNK_BYTES = 1024 * 1024


class UploadProtocolError(ApplicationError):
    code = "tus_invalid"


class UnsupportedVersion(ApplicationError):
    status = 412
    code = "tus_version"


class UnsupportedMediaType(ApplicationError):
    status = 415
    code = "unsupported_media_type"


class OffsetMismatch(ApplicationError):
    status = 409
    code = "offset_mismatch"


class UploadLocked(ApplicationError):
    """Another PATCH to the same upload is still writing (tusd answers 423 too)."""

    status = 423
    code = "upload_locked"


class UploadTooBig(ApplicationError):
    status = 413
    code = "file_too_large"


class UploadIncomplete(ApplicationError):
    status = 409
    code = "upload_incomplete"


class TooManyUploads(ApplicationError):
    status = 429
    code = "too_many_uploads"


def check_version(value: str | None) -> None:
    if value != VERSION:
        raise UnsupportedVersion(f"Send the header Tus-Resumable: {VERSION}.")


def parse_nonnegative(name: str, value: str | None) -> int:
    """An integer header such as Upload-Length or Upload-Offset (digits only)."""
    if value is None or not value.isdigit() or not value.isascii():
        raise UploadProtocolError(f"Send {name} as a non-negative integer.")
    return int(value)


def parse_metadata(value: str | None) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64(value)` pairs; a key alone means ""."""
    metadata: dict[str, str] = {}
    for pair in (value or "").split(","):
        parts = pair.strip().split(" ")
        if parts == [""]:
            continue
        if len(parts) > 2 or not parts[0] or parts[0] in metadata:
            raise UploadProtocolError(f"Upload-Metadata: {pair.strip()!r} is not `key base64`.")
        try:
            decoded = base64.b64decode(parts[1], validate=True) if len(parts) == 2 else b""
            metadata[parts[0]] = decoded.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise UploadProtocolError(
                f"Upload-Metadata: the value of {parts[0]!r} is not base64 of UTF-8 text."
            ) from exc
    return metadata


def format_metadata(metadata: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" if value else key
        for key, value in metadata.items()
    )
