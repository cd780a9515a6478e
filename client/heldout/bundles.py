"""Bundles on the client side: zip a bundle folder deterministically, check its shape,
and the diff the server answers to `POST competitions/apply/` (docs/bundle.md,
"Applying a bundle").

The client can't parse competition.yaml itself (the parser is the server's, and the
client has no YAML dependency), so the local check is structural only: the folder or zip
holds `competition.yaml` at its top (or under one top folder, as the server accepts).
Everything else is the server's dry run.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUNDLE_YAML = "competition.yaml"
# Fixed entry times and modes: the same folder always gives the same zip.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class BundleShapeError(ValueError):
    """The path is not a bundle folder or zip (no competition.yaml at its top)."""


def zip_folder(folder: Path, target: Path) -> Path:
    """Zip `folder`'s files (sorted; hidden files and folders such as .git left out) into
    `target`, with fixed times and modes."""
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return target


def check_shape(path: Path) -> None:
    """Raise BundleShapeError unless `path` is a folder or zip with competition.yaml."""
    if path.is_dir():
        if not (path / BUNDLE_YAML).is_file():
            raise BundleShapeError(f"{path}: no {BUNDLE_YAML} in this folder")
        return
    if not zipfile.is_zipfile(path):
        raise BundleShapeError(f"{path}: not a folder or a zip file")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    tops = {n.split("/", 1)[0] for n in names}
    nested = len(tops) == 1 and f"{next(iter(tops))}/{BUNDLE_YAML}" in names
    if BUNDLE_YAML not in names and not nested:
        raise BundleShapeError(f"{path}: no {BUNDLE_YAML} at the top of the zip")


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class FileChange:
    path: str
    change: str
    old_sha256: str
    new_sha256: str


@dataclass(frozen=True)
class BundleDiff:
    """The server's diff; `raw` is its JSON as answered."""

    slug: str
    created: bool
    applied: bool
    empty: bool
    changes: tuple[FieldChange, ...]
    files: tuple[FileChange, ...]
    refusals: tuple[str, ...]
    notes: tuple[str, ...]
    url: str | None
    job: str | None
    version: int | None
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BundleDiff:
        return cls(
            slug=str(data["slug"]),
            created=bool(data.get("created")),
            applied=bool(data.get("applied")),
            empty=bool(data.get("empty")),
            changes=tuple(
                FieldChange(c["field"], c.get("old"), c.get("new")) for c in data.get("changes", [])
            ),
            files=tuple(
                FileChange(f["path"], f["change"], f.get("old_sha256", ""), f.get("new_sha256", ""))
                for f in data.get("files", [])
            ),
            refusals=tuple(data.get("refusals", [])),
            notes=tuple(data.get("notes", [])),
            url=data.get("url"),
            job=data.get("job"),
            version=data.get("version"),
            raw=data,
        )
