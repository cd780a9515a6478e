"""Streaming uploads: files go to a temporary file on disk chunk by chunk, hashed on the way,
so the web process never holds a whole submission in memory nor reads it twice."""

import hashlib

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler


class UploadTooLarge(Exception):
    pass


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Writes every upload to disk, computing its sha256 and enforcing the size limit."""

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
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
