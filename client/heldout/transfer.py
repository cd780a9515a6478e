"""Moving bytes: resumable uploads (tus 1.0, docs/uploads.md) and downloads that skip a
file whose SHA-256 already matches, resume a partial one with `Range` + `If-Range`, and
verify the SHA-256 of what they wrote.

`progress(done, total)` callbacks report bytes; they are optional.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import httpx

from heldout.http import HeldoutError, Http, error_from
from heldout.models import DataFile, Download, Upload

Progress = Callable[[int, int], None]
TUS = {"Tus-Resumable": "1.0.0"}
# A PATCH body's size (docs/uploads.md): the first piece and the one after a failure are
# CHUNK; then pieces follow the link's speed (next_piece).
CHUNK = 4 * 2**20
PIECE_MAX = 256 * 2**20
PIECE_SECONDS = 2.0
BLOCK = 2**20  # read from the file and handed to the socket at a time
READ = 2**16
PATCH_ATTEMPTS = 20  # PATCHes that may fail in a row before the upload gives up


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _metadata(values: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def upload_file(
    http: Http,
    path: Path,
    *,
    competition: str | None = None,
    filename: str | None = None,
    progress: Progress | None = None,
) -> Upload:
    """Create a tus upload and send the file in pieces; after a broken piece, ask the
    server its offset (HEAD) and go on from there."""
    size = path.stat().st_size
    meta = {"filename": filename or path.name}
    if competition:
        meta["competition"] = competition
    created = http.request(
        "POST",
        "uploads/",
        headers={**TUS, "Upload-Length": str(size), "Upload-Metadata": _metadata(meta)},
    )
    url = created.headers["Location"]
    offset = send_from(http, url, path, size=size, offset=0, progress=progress)
    return Upload(url=url, length=size, offset=offset)


def upload_offset(http: Http, url: str) -> int:
    return int(http.request("HEAD", url, headers=TUS).headers["Upload-Offset"])


def send_from(
    http: Http, url: str, path: Path, *, size: int, offset: int, progress: Progress | None
) -> int:
    """PATCH the file from `offset` on; after a failed piece (a broken connection, 409
    offset mismatch, 423 locked), wait a little, ask the server its offset and go on."""
    failures = 0
    piece, ceiling = CHUNK, PIECE_MAX
    with path.open("rb") as f:
        while offset < size:
            length = min(piece, size - offset)
            started = time.monotonic()
            try:
                response = http.request(
                    "PATCH",
                    url,
                    content=_Piece(f, offset, length),
                    headers={
                        **TUS,
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                        "Content-Length": str(length),
                    },
                )
                offset = int(response.headers["Upload-Offset"])
                failures = 0
                piece = min(ceiling, next_piece(length, time.monotonic() - started))
            except HeldoutError as exc:
                failures += 1
                if failures >= PATCH_ATTEMPTS or not _resumable(exc, length):
                    raise
                if exc.status == 413:  # larger than the server takes in one request
                    ceiling = max(CHUNK, length // 2)
                piece = CHUNK  # a cut costs little while the link is in doubt
                offset = _offset_after_failure(http, url, failures)
            if progress:
                progress(offset, size)
    return offset


def _resumable(exc: HeldoutError, length: int) -> bool:
    """A broken connection, 409 (offset mismatch), 423 (locked), or 413 for a piece larger
    than the server takes in one request: go on from the server's offset."""
    if exc.status is None:
        return exc.code != "file_changed"
    return exc.status in (409, 423) or (exc.status == 413 and length > CHUNK)


def next_piece(length: int, seconds: float) -> int:
    """The next piece's size: about PIECE_SECONDS' worth at the speed the last one went,
    at most four times the last, between CHUNK and PIECE_MAX. Fast links get large pieces
    (few requests: each ends with the server's fsync), slow ones small (a cut loses little
    behind a buffering proxy, which passes on a piece only once it is whole)."""
    rate = length / max(seconds, 1e-3)
    return int(max(CHUNK, min(PIECE_MAX, 4 * length, rate * PIECE_SECONDS)))


class _Piece:
    """`length` bytes of the open file from `offset`, read a block at a time while they are
    sent (the client holds one block, whatever the piece's size). Iterable again, from its
    start, when the request is sent again."""

    def __init__(self, f: BinaryIO, offset: int, length: int) -> None:
        self.f, self.offset, self.length = f, offset, length

    def __iter__(self) -> Iterator[bytes]:
        self.f.seek(self.offset)
        left = self.length
        while left > 0:
            block = self.f.read(min(BLOCK, left))
            if not block:
                raise HeldoutError(
                    f"{self.f.name} became shorter while it was being sent", code="file_changed"
                )
            left -= len(block)
            yield block


def _offset_after_failure(http: Http, url: str, failures: int) -> int:
    if failures > 1:  # the first retry at once (a 409 needs no wait), then backing off
        time.sleep(min(2 ** (failures - 2), 10))
    return upload_offset(http, url)


def download_file(
    http: Http, data_file: DataFile, dest: Path, *, progress: Progress | None = None
) -> Download:
    """Fetch `data_file` into the folder `dest`, writing `<name>.part` and renaming it once
    its SHA-256 matches the listed one."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / data_file.name
    if target.exists() and data_file.sha256 and sha256_of(target) == data_file.sha256:
        if progress:
            progress(data_file.size, data_file.size)
        return _result(data_file, target, "skipped")
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if data_file.size and have > data_file.size:
        part.unlink()
        have = 0
    try:
        action = _fetch(http, data_file, part, have, progress)
    except httpx.TransportError as exc:
        raise HeldoutError(
            f"{data_file.name}: the download broke off ({exc}); run it again to resume"
        ) from exc
    got = sha256_of(part)
    if data_file.sha256 and got != data_file.sha256:
        part.unlink()
        raise HeldoutError(
            f"{data_file.name}: SHA-256 {got} does not match the listed {data_file.sha256}; "
            "the partial file was removed, run the download again",
            code="checksum_mismatch",
        )
    os.replace(part, target)
    return _result(data_file, target, action)


def _fetch(
    http: Http, data_file: DataFile, part: Path, have: int, progress: Progress | None
) -> str:
    headers = {"Accept": "*/*"}
    if have:
        headers["Range"] = f"bytes={have}-"
        if data_file.sha256:
            headers["If-Range"] = f'"{data_file.sha256}"'
    if have and have == data_file.size:
        return "resumed"  # every byte is there: only the check is left
    with http.client.stream("GET", http.absolute(data_file.url), headers=headers) as response:
        if response.status_code >= 400:
            response.read()
            raise error_from(response)
        resumed = response.status_code == 206
        mode, done = ("ab", have) if resumed else ("wb", 0)
        total = data_file.size or int(response.headers.get("Content-Length") or 0) + done
        with part.open(mode) as out:
            for block in response.iter_bytes(READ):
                out.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
    return "resumed" if resumed else "downloaded"


def _result(data_file: DataFile, path: Path, action: str) -> Download:
    return Download(
        name=data_file.name,
        path=str(path),
        size=path.stat().st_size,
        sha256=data_file.sha256,
        action=action,
    )


def stream_to(http: Http, url: str, target: Path, *, progress: Progress | None = None) -> Path:
    """Save any download (an export, a bundle) to `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with http.client.stream("GET", http.absolute(url), headers={"Accept": "*/*"}) as response:
            if response.status_code >= 400:
                response.read()
                raise error_from(response)
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            with target.open("wb") as out:
                for block in response.iter_bytes(READ):
                    out.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
    except httpx.TransportError as exc:
        raise HeldoutError(f"The download broke off: {exc}") from exc
    return target
