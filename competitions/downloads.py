"""File downloads with an ETag, conditional GET and byte ranges (RFC 9110), so clients skip
files they already have and resume interrupted downloads.

Every download view answers through `file_download`:
- `ETag` is the file's SHA-256 in quotes: the stored digest where the model keeps one,
  else computed from the bytes (generated zips: a new ETag whenever the bytes differ).
- `If-None-Match` naming that ETag (or `*`) answers 304 with no body.
- `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` (one range) answers 206 with
  `Content-Range`; a range outside the file or malformed answers 416 with
  `Content-Range: bytes */size`. Several ranges, or another unit, get the whole file (RFC
  9110 lets a server ignore Range). `If-Range` with another ETag gets the whole file too.

`stored_download` serves a stored file (any storage backend): with
HELDOUT_STORAGE_PRESIGNED_DOWNLOADS and a backend that signs URLs (S3 and its kin) the
client is redirected (302) to a short-lived URL and the bytes never pass through the web
process; otherwise they are streamed from the storage through `file_download`.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import IO

from django.conf import settings
from django.db.models.fields.files import FieldFile
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotModified,
    HttpResponseRedirect,
    JsonResponse,
)
from django.utils.http import parse_etags

from competitions.files import presigned_url

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 1 << 20


class Unsatisfiable(Exception):
    """The Range names no byte of the file."""


def file_download(
    request: HttpRequest, stream: IO[bytes], *, filename: str, sha256: str = ""
) -> HttpResponseBase:
    """The open, seekable `stream` as an attachment named `filename`, honouring the
    request's If-None-Match, Range and If-Range; the response closes the stream."""
    size = _size(stream)
    etag = f'"{sha256 or _sha256(stream)}"'
    if request.method in ("GET", "HEAD") and _none_match_fails(request, etag):
        stream.close()
        not_modified = HttpResponseNotModified()
        not_modified["ETag"] = etag
        return not_modified
    try:
        span = _range(request, etag, size)
    except Unsatisfiable:
        stream.close()
        return _unsatisfiable(request, size)
    if span is None:
        response = FileResponse(stream, as_attachment=True, filename=filename)
    else:
        start, end = span
        stream.seek(start)
        response = FileResponse(
            _Slice(stream, end - start + 1), as_attachment=True, filename=filename
        )
        response.status_code = 206
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    response["ETag"] = etag
    response["Accept-Ranges"] = "bytes"
    return response


def stored_download(
    request: HttpRequest, field_file: FieldFile, *, filename: str, sha256: str = ""
) -> HttpResponseBase:
    """A stored file as an attachment: redirected to a presigned URL when enabled and the
    backend signs URLs, else streamed from the storage (see the module docstring)."""
    if settings.HELDOUT_STORAGE_PRESIGNED_DOWNLOADS and request.method == "GET":
        if sha256 and _none_match_fails(request, f'"{sha256}"'):
            not_modified = HttpResponseNotModified()
            not_modified["ETag"] = f'"{sha256}"'
            return not_modified
        url = presigned_url(
            field_file, filename=filename, expire_s=settings.HELDOUT_STORAGE_PRESIGNED_TTL_S
        )
        if url is not None:
            return HttpResponseRedirect(url)
    return file_download(request, field_file.open("rb"), filename=filename, sha256=sha256)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The first and last byte (inclusive) a Range header asks for; None to send the
    whole file (no header, another unit, several ranges); Unsatisfiable otherwise."""
    if not header.startswith("bytes=") or "," in header:
        return None
    match = _RANGE.match(header.replace(" ", ""))
    if match is None or match[1] == match[2] == "":
        raise Unsatisfiable(header)
    if match[1] == "":  # a suffix: the last n bytes
        length = int(match[2])
        if length == 0 or size == 0:
            raise Unsatisfiable(header)
        return max(size - length, 0), size - 1
    start = int(match[1])
    end = int(match[2]) if match[2] else size - 1
    if start >= size or end < start:
        raise Unsatisfiable(header)
    return start, min(end, size - 1)


def _range(request: HttpRequest, etag: str, size: int) -> tuple[int, int] | None:
    header = request.headers.get("Range", "")
    if request.method != "GET" or not header:
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:
        return None  # the client's copy is of other bytes: it needs the whole file
    return parse_range(header.strip(), size)


def _none_match_fails(request: HttpRequest, etag: str) -> bool:
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    tags = parse_etags(header)
    # Weak comparison (RFC 9110 13.1.2): W/"x" matches "x".
    return "*" in tags or etag in {t.removeprefix("W/") for t in tags}


def _unsatisfiable(request: HttpRequest, size: int) -> HttpResponse:
    message = f"The requested range is not within the file's {size} bytes."
    response: HttpResponse
    if request.path_info.startswith("/api/"):
        response = JsonResponse({"detail": message, "code": "range_not_satisfiable"}, status=416)
    else:
        response = HttpResponse(message, status=416, content_type="text/plain")
    response["Content-Range"] = f"bytes */{size}"
    response["Accept-Ranges"] = "bytes"
    return response


def _size(stream: IO[bytes]) -> int:
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def _sha256(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


class _Slice:
    """Reads at most `length` bytes from the stream's position. No fileno, tell or name:
    FileResponse then neither hands the whole file to sendfile nor sizes it itself."""

    def __init__(self, stream: IO[bytes], length: int):
        self._stream = stream
        self._left = length

    def read(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        data = self._stream.read(want) if want > 0 else b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._stream.close()
