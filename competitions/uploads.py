"""Streaming uploads: files go to a temporary file on disk chunk by chunk, hashed on the way,
so the web process never holds a whole submission in memory nor reads it twice.

A resumable upload's PATCH body is read straight from gunicorn's socket when it can be
(SocketBody): gunicorn's own reader copies every piece through two buffers, which made a
fast upload CPU-bound (bench/bench_upload.py).

A malformed multipart body is refused with 400 as soon as it is seen, never answered 500
after waiting on the client: two file parts of one name ("send one file"), and a body that
ends, or stalls for HELDOUT_BODY_STALL_TIMEOUT_S, before its Content-Length (BodyGuard,
installed by competitions.middleware.UploadSizeLimitMiddleware).
"""

from __future__ import annotations

import hashlib
import io
import socket
from typing import Any

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


class SocketBody:
    """A request body of known length read from gunicorn's socket by plain recv() calls:
    first what gunicorn already holds of it (read ahead with the headers), then the rest.
    gunicorn's count of the body bytes still to come is kept right, so the connection can
    carry the next request; a failed read marks the body failed, so that gunicorn closes
    the connection instead."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self._reader = body.reader
        self._sock = body.reader.unreader.sock
        self._held = self._take_held(body.buf, body.reader.unreader)

    @classmethod
    def of(cls, wsgi_input: Any) -> SocketBody | None:
        """The fast reader for gunicorn's HTTP/1 body of known length; None for anything
        else (another server, a chunked body, the test client), read the ordinary way."""
        try:
            from gunicorn.http.body import Body, LengthReader
            from gunicorn.http.unreader import SocketUnreader
        except ImportError:
            return None
        if not isinstance(wsgi_input, Body) or type(wsgi_input.reader) is not LengthReader:
            return None
        unreader = wsgi_input.reader.unreader
        if type(unreader) is not SocketUnreader or type(unreader.sock) is not socket.socket:
            return None  # TLS in gunicorn itself: its socket takes no recv flags
        try:
            return cls(wsgi_input)
        except AttributeError:  # another gunicorn's insides (nothing was taken yet)
            return None

    def _take_held(self, body_buffer: io.BytesIO, unreader: Any) -> bytes:
        ahead = unreader.buf.getvalue()
        held = body_buffer.getvalue()
        self._body.buf = io.BytesIO()
        unreader.buf = io.BytesIO()
        mine = ahead[: self._reader.length]
        unreader.buf.write(ahead[len(mine) :])  # a pipelined next request's bytes, if any
        self._reader.length -= len(mine)
        return held + mine

    def read(self, size: int, /) -> bytes:
        buffer = bytearray(min(size, len(self._held) + self._reader.length))
        return bytes(buffer[: self.readinto(buffer)])

    def readinto(self, buffer: Any, /) -> int:
        """Fill `buffer` with what has arrived: waits for the first bytes, then takes what
        more the socket holds without waiting (a fast client's bytes come in one large
        piece; a slow client's are not held back). 0 at the body's end or if the client
        went away."""
        view = memoryview(buffer).cast("B")
        if self._held:
            n = min(len(view), len(self._held))
            view[:n], self._held = self._held[:n], self._held[n:]
            return n
        n, flags = 0, 0
        while n < len(view) and self._reader.length > 0:
            wanted = min(len(view) - n, self._reader.length)
            try:
                got = self._sock.recv_into(view[n:], wanted, flags)
            except BlockingIOError:
                break
            except OSError:
                self._body.failed = True
                if n:
                    break  # these bytes count; the next read finds the connection gone
                raise
            if not got:
                break
            n += got
            self._reader.length -= got
            if self._sock.gettimeout() is not None:
                break  # a socket with a timeout waits even with MSG_DONTWAIT
            flags = socket.MSG_DONTWAIT
        return n


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
