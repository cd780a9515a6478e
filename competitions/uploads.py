"""Streaming uploads: files go to a temporary file on disk chunk by chunk, hashed on the way,
so the web process never holds a whole submission in memory nor reads it twice.

A malformed multipart body is refused with 400 as soon as it is seen, never answered 500
after waiting on the client: two file parts of one name ("send one file"), and a body that
ends, or stalls for HELDOUT_BODY_STALL_TIMEOUT_S, before its Content-Length (BodyGuard,
installed by competitions.middleware.UploadSizeLimitMiddleware).
"""

import hashlib

from django.conf import settings
from django.core.exceptions import BadRequest
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler

from competitions.errors import ApplicationError


class UploadTooLarge(Exception):
    pass


class UploadRefused(ApplicationError, BadRequest):
    """A malformed upload: the API answers 400 with its sentence (an ApplicationError), the
    pages 400 (BadRequest), both without reading the rest of the body."""

    code = "upload_malformed"


class BodyGuard:
    """The request's body stream, refusing a body shorter than its Content-Length: one that
    ends early (the client closed) or stalls (the socket's read timeout) is UploadRefused."""

    def __init__(self, stream, length: int):
        self.stream = stream
        self.length = length
        self.received = 0

    def read(self, size: int = -1) -> bytes:
        wanted = self.length - self.received if size is None or size < 0 else size
        wanted = min(wanted, self.length - self.received)
        try:
            data = self.stream.read(wanted)
        except OSError:  # TimeoutError included: the socket's read timeout
            raise self._short() from None
        self.received += len(data)
        if len(data) < wanted:
            raise self._short()
        return data

    def readline(self, size: int = -1) -> bytes:  # the multipart parser only uses read()
        return self.stream.readline(size)

    def _short(self) -> UploadRefused:
        return UploadRefused(
            f"The request body ended after {self.received} of the {self.length} bytes its "
            "Content-Length announced; send the whole body."
        )


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Writes every upload to disk, computing its sha256 and enforcing the size limit."""

    def new_file(self, field_name: str, *args, **kwargs) -> None:
        # Refused at the second part's headers: its bytes are never read nor stored.
        seen = self.__dict__.setdefault("_fields", set())
        if field_name in seen:
            raise UploadRefused(f'Send one file: the request has two "{field_name}" parts.')
        seen.add(field_name)
        super().new_file(field_name, *args, **kwargs)
        self._sha256 = hashlib.sha256()
        self._received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self._received += len(raw_data)
        if self._received > settings.HELDOUT_MAX_UPLOAD_BYTES and self._over_limit():
            # The request was chunked or lied about its length; the middleware's check missed it.
            if self.request is not None:  # Django always gives handlers the request
                self.request.META["heldout.upload_too_large"] = True
            raise StopUpload(connection_reset=False)
        self._sha256.update(raw_data)
        self.file.write(raw_data)

    def _over_limit(self) -> bool:
        from competitions.middleware import upload_limit

        # Past the general limit: a container phase may allow more (looked up once).
        return self.request is None or self._received > upload_limit(self.request)

    def file_complete(self, file_size: int) -> UploadedFile | None:
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self._sha256.hexdigest()  # type: ignore[attr-defined]
        return uploaded


def upload_sha256(uploaded) -> str:
    """The sha256 of an uploaded file, computed while it streamed in when possible."""
    digest = getattr(uploaded, "sha256", None)
    if digest:
        return digest
    sha = hashlib.sha256()
    for chunk in uploaded.chunks():
        sha.update(chunk)
    uploaded.seek(0)
    return sha.hexdigest()
