"""The copy of a checked `docker save` archive that the engine loads: a plain tar stream
without its image names, so loading it can never re-tag an image the platform uses (an
archive naming itself `heldout-scorer:latest` would otherwise replace the scorer).

Pure: no Django, no Docker. Call only on an archive `archive_check` passed.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from typing import IO, Literal

from scoring.image_archive import CHUNK, entry_name


def archive_untagged(fileobj: IO[bytes]) -> Iterator[bytes]:
    """The archive as an uncompressed tar stream without image names, for the engine to load.

    Drops `repositories` and the names in manifest.json and index.json, so the engine loads
    the image untagged; the caller tags it. Call only on an archive `archive_check` passed.
    """
    magic = fileobj.read(2)
    fileobj.seek(0)
    mode: Literal["r|gz", "r|"] = "r|gz" if magic == b"\x1f\x8b" else "r|"
    with tarfile.open(fileobj=fileobj, mode=mode) as tar:
        for info in tar:
            name = entry_name(info.name)
            if name == "repositories":
                continue
            stream = tar.extractfile(info) if info.isreg() else None
            if name in ("manifest.json", "index.json") and stream is not None:
                body = _without_names(name, stream.read())
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(body), 0o644
                stream = io.BytesIO(body)
            yield from _entry(info, stream)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


def _without_names(name: str, body: bytes) -> bytes:
    data = json.loads(body)
    if name == "manifest.json":
        for entry in data:
            entry["RepoTags"] = None
    else:
        for entry in data.get("manifests", []):
            annotations = entry.get("annotations") or {}
            annotations.pop("io.containerd.image.name", None)
            annotations.pop("org.opencontainers.image.ref.name", None)
    return json.dumps(data).encode()


def _entry(info: tarfile.TarInfo, stream: IO[bytes] | None) -> Iterator[bytes]:
    yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    if stream is None:
        return
    while chunk := stream.read(CHUNK):
        yield chunk
    yield b"\0" * (-info.size % tarfile.BLOCKSIZE)
