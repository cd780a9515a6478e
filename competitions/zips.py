"""Zips in and out: an organizer's bundle zip unpacked within limits, and the exports the
platform writes, which appear whole or not at all."""

from __future__ import annotations

import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from django.conf import settings

from competitions.errors import BundleInvalid

# A zip of many tiny files can exhaust inodes and time without exceeding the byte cap.
MAX_ZIP_ENTRIES = 10_000


@contextmanager
def zip_written_atomically(dest: Path, *, prefix: str) -> Iterator[zipfile.ZipFile]:
    """A zip open for writing that appears at `dest` only once complete: it is written next
    to the destination and renamed, so a failed export leaves no half zip."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".zip", dir=dest.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            yield zf
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def unzip_bundle(source: Path, dest: Path) -> None:
    """Unpack refusing entries that escape `dest`, symlinks, and more bytes than an upload may hold."""
    limit = settings.HELDOUT_MAX_UPLOAD_BYTES
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleInvalid([f"{source.name}: not a readable zip file ({exc})."]) from None
    with zf:
        infos = [i for i in zf.infolist() if not i.filename.startswith("__MACOSX/")]
        problems = [p for info in infos if (p := _zip_entry_problem(info))]
        if len(infos) > MAX_ZIP_ENTRIES:
            problems.append(
                f"The zip holds {len(infos)} entries; at most {MAX_ZIP_ENTRIES} are allowed."
            )
        declared = sum(i.file_size for i in infos)
        if declared > limit:
            problems.append(f"The zip unpacks to {declared} bytes, more than the limit of {limit}.")
        if problems:
            raise BundleInvalid(problems)
        _unzip_entries(zf, infos, dest, limit)


def _unzip_entries(
    zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], dest: Path, limit: int
) -> None:
    written = 0
    for info in infos:
        target = dest.joinpath(*PurePosixPath(info.filename).parts)
        try:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                # Declared sizes can lie; count what actually comes out.
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > limit:
                        raise BundleInvalid([f"The zip unpacks to more than {limit} bytes."])
                    out.write(chunk)
        # A corrupt or encrypted entry, or a file and a folder of the same name.
        except (zipfile.BadZipFile, RuntimeError, OSError, NotImplementedError) as exc:
            raise BundleInvalid([f"{info.filename}: could not be unpacked ({exc})."]) from None


def _zip_entry_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        return f"{name}: symbolic links are not allowed in a bundle."
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return f"{name}: entries must be relative paths with forward slashes."
    if ".." in PurePosixPath(name).parts:
        return f"{name}: entries must not contain '..'."
    return None
