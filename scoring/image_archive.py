"""Checking a `docker save` archive before the engine sees it, and the copy it loads.

Pure: no Django, no Docker. A participant's archive is hostile until proven otherwise, so
`archive_check` reads it as data and reports every problem at once: a size over the limit,
as uploaded or as unpacked (every file of every layer at its apparent size, read by
scoring/image_layers.py), a sparse file, an entry escaping the archive (absolute, `..`, or
a link pointing out), a device or other special file, not exactly one image, a manifest
whose config or layers are missing, a layer compressed into a bomb, and image settings the
sandbox cannot honour (platform, VOLUME, ENTRYPOINT, no command). It reads forwards only,
never a header of more than a few MiB, and stops at the first limit crossed (size, ratio,
time), so a bomb costs a fraction of a second. Both layouts `docker save` writes are
understood: the legacy one (`manifest.json`, `<id>/layer.tar`, `<id>.json`) and the OCI
one of Docker 25+ (`index.json`, `oci-layout`, `blobs/sha256/...`, plus the same
`manifest.json`).

`archive_untagged` (scoring/image_untag.py) makes the copy the engine loads.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import posixpath
import re
import tarfile
import time
import zlib
from dataclasses import dataclass, field
from typing import IO, Any

from scoring.image_layers import (
    BLOCK,
    CHUNK,
    COMPRESSIONS,
    Budget,
    Forward,
    Gunzipped,
    NoSparseMap,
    Prefixed,
    Refused,
    format_size,
    is_tar,
    measure_compressed,
    measure_layer,
)

__all__ = ["CHUNK", "ArchiveProblem", "ArchiveReport", "archive_check", "entry_name", "format_size"]

MAX_ENTRIES = 10_000
MAX_LAYERS = 120  # overlayfs stacks at most 128 layers
SMALL_BYTES = 1024 * 1024  # manifests and configs are read into memory; layers never are
MAX_KEPT_BYTES = 32 * 1024 * 1024  # all the JSON kept from one archive
_INDEX_FILES = ("manifest.json", "index.json", "Dockerfile")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ArchiveProblem:
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass
class ArchiveReport:
    problems: list[ArchiveProblem] = field(default_factory=list)
    image_id: str = ""  # sha256 of the config: the id the engine gives the loaded image
    command: list[str] = field(default_factory=list)
    working_dir: str = ""
    layers: int = 0
    unpacked_bytes: int = 0
    # "build_context" for a folder with a Dockerfile (only when the caller accepts one);
    # its Dockerfile is the caller's to check (scoring.image_checks.dockerfile_check).
    kind: str = "image"
    dockerfile: str = ""
    bases: list[str] = field(default_factory=list)  # the platform images it builds FROM
    gzipped: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, code: str, message: str) -> None:
        self.problems.append(ArchiveProblem(code, message))

    def summary(self) -> str:
        return " ".join(p.message for p in self.problems)


def archive_check(
    fileobj: IO[bytes],
    *,
    max_bytes: int,
    architecture: str | None = None,
    os: str = "linux",
    accept_build_context: bool = False,
    time_limit_s: float | None = None,
) -> ArchiveReport:
    """Every problem of the archive in `fileobj` (seekable), read as data, never extracted.

    `max_bytes` caps both the archive and what it unpacks to: every file of every layer at
    its apparent size (compressed layers and an outer gzip included), so a small bomb or a
    sparse file is refused as surely as a big file. Reading stops at the first byte past
    the limit, or past `time_limit_s`. `architecture` and `os`: the workers' platform (no
    architecture: not checked). With `accept_build_context`, a tar of a folder with a
    Dockerfile (and no manifest.json) passes the entry checks as kind "build_context", its
    Dockerfile left to the caller.
    """
    report = ArchiveReport()
    size = fileobj.seek(0, io.SEEK_END)
    fileobj.seek(0)
    if size > max_bytes:
        report.add(
            "too_large",
            f"The archive is {format_size(size)}, more than the limit of {format_size(max_bytes)}.",
        )
        return report
    gzipped = report.gzipped = _outer_format(fileobj, report)
    if not report.ok:
        return report
    deadline = time.monotonic() + time_limit_s if time_limit_s is not None else None
    index = _Index(Budget(max_bytes=max_bytes, deadline=deadline))
    if not _read_archive(fileobj, gzipped, index, report):
        return report
    report.unpacked_bytes = index.budget.used
    is_context = "Dockerfile" in index.kinds and "manifest.json" not in index.kinds
    if accept_build_context and is_context:
        dockerfile = index.small.get(index.resolve("Dockerfile") or "")
        if not report.ok:
            pass
        elif dockerfile is None:
            report.add("bad_dockerfile", "The Dockerfile is not a file of at most 1 MiB.")
        else:
            report.kind = "build_context"
            report.dockerfile = dockerfile.decode("utf-8", errors="replace")
    else:
        _check_layout(index, report, architecture, os)
    return report


def _read_archive(fileobj: IO[bytes], gzipped: bool, index: _Index, report: ArchiveReport) -> bool:
    """Scan every entry into `index`; False when the scan had to stop (the problem added)."""
    raw = Gunzipped(fileobj) if gzipped else fileobj
    # tarfile reads through a Forward: no header may claim gigabytes of memory, and a gzipped
    # archive is decompressed once, forwards, within the deadline.
    reader = Forward(raw, deadline=index.budget.deadline, can_seek=not gzipped)
    try:
        with tarfile.open(fileobj=reader, mode="r:", tarinfo=NoSparseMap) as tar:  # type: ignore[call-overload]
            _scan(tar, index, report)
    except Refused as exc:
        report.add(exc.code, exc.message)
        return False
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        if "unexpected end of data" in str(exc) or isinstance(exc, EOFError):
            report.add("truncated", "The archive is cut short; was the upload complete?")
            return False
        report.add(
            "not_tar",
            f"This is not a readable tar archive ({exc}). Upload what "
            "`docker save IMAGE -o image.tar` writes, gzipped or not.",
        )
        return False
    finally:
        fileobj.seek(0)
    return True


def _outer_format(fileobj: IO[bytes], report: ArchiveReport) -> bool:
    """Whether the archive is gzipped; adds a problem for other compressions."""
    magic = fileobj.read(6)
    fileobj.seek(0)
    if not magic:
        report.add("empty", "The file is empty.")
    for prefix, (name, _opener) in COMPRESSIONS.items():
        if magic.startswith(prefix):
            if name == "gzip":
                return True
            report.add(
                "compression",
                f"The archive is {name}-compressed; upload the tar as `docker save` writes "
                "it, or gzipped.",
            )
    return False


@dataclass
class _Index:
    """What the scan found: entries by normalised name, and the small files' bytes."""

    budget: Budget
    kinds: dict[str, str] = field(default_factory=dict)  # name -> file, dir, symlink, hardlink
    links: dict[str, str] = field(default_factory=dict)  # link name -> target, archive-relative
    small: dict[str, bytes] = field(default_factory=dict)  # JSON files, by name
    kept: int = 0

    def resolve(self, name: str) -> str | None:
        """The regular file `name` is or links to, or None."""
        for _ in range(10):
            kind = self.kinds.get(name)
            if kind == "file":
                return name
            if kind not in ("symlink", "hardlink"):
                return None
            name = self.links[name]
        return None


def entry_name(name: str) -> str:
    """A tar entry's name as the engine reads it: without leading ./ or a trailing /."""
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def _escapes(path: str) -> bool:
    return path == ".." or path.startswith(("/", "../"))


def _scan(tar: tarfile.TarFile, index: _Index, report: ArchiveReport) -> None:
    for count, info in enumerate(tar, start=1):
        if count > MAX_ENTRIES:
            report.add("too_many_entries", f"The archive has more than {MAX_ENTRIES} entries.")
            return
        name = entry_name(info.name)
        if name in ("", "."):
            continue
        if info.name.startswith("/") or ".." in name.split("/"):
            report.add(
                "path_escape",
                f"Entry {info.name!r} points outside the archive (an absolute path or '..').",
            )
            continue
        if name in index.kinds:
            report.add(
                "duplicate", f"Entry {name!r} appears twice; an image archive names each once."
            )
            continue
        index.budget.spend(BLOCK + _index_entry(tar, info, name, index, report))


def _index_entry(
    tar: tarfile.TarFile, info: tarfile.TarInfo, name: str, index: _Index, report: ArchiveReport
) -> int:
    """Records the entry in `index`; returns what it unpacks to."""
    if info.isdir():
        index.kinds[name] = "dir"
    elif info.issym() or info.islnk():
        # A symlink's target is relative to its folder; a hard link's to the archive root.
        base = posixpath.dirname(name) if info.issym() else ""
        target = info.linkname
        resolved = posixpath.normpath(posixpath.join(base, target)) if target else ".."
        if target.startswith("/") or _escapes(resolved):
            kind = "symbolic" if info.issym() else "hard"
            report.add(
                "link_escape",
                f"Entry {name!r} is a {kind} link to {target!r}, outside the archive.",
            )
            return 0
        index.kinds[name] = "symlink" if info.issym() else "hardlink"
        index.links[name] = resolved
    elif info.isreg() and not info.issparse():
        index.kinds[name] = "file"
        return _read_file(tar, info, name, index, report)
    else:
        report.add(
            "special_file",
            f"Entry {name!r} is a {_kind_name(info)}; an image archive holds only files, "
            "folders and links.",
        )
    return -(-info.size // BLOCK) * BLOCK


def _kind_name(info: tarfile.TarInfo) -> str:
    if info.ischr():
        return "character device"
    if info.isblk():
        return "block device"
    if info.isfifo():
        return "named pipe"
    if info.issparse():
        return "sparse file"
    return f"special entry (type {info.type!r})"


def _read_file(
    tar: tarfile.TarFile, info: tarfile.TarInfo, name: str, index: _Index, report: ArchiveReport
) -> int:
    """Keeps small JSON files; returns what the entry unpacks to: a layer's files (a tar,
    plain or compressed) at their apparent sizes, another compressed file unpacked.

    The entry is read forwards only: seeking back in a gzipped archive would decompress
    it again from its start.
    """
    stream = tar.extractfile(info)
    stored = -(-info.size // BLOCK) * BLOCK
    if stream is None:
        return stored
    head = stream.read(info.size if info.size <= SMALL_BYTES else BLOCK)
    keep = info.size <= SMALL_BYTES and (_looks_like_json(head) or name in _INDEX_FILES)
    if keep and index.kept + len(head) <= MAX_KEPT_BYTES:
        index.small[name] = head
        index.kept += len(head)
    if is_tar(head):
        reader = Forward(Prefixed(head, stream), deadline=index.budget.deadline)
        return measure_layer(reader, name, index.budget, report.add) or stored
    for prefix, (kind, opener) in COMPRESSIONS.items():
        if not head.startswith(prefix):
            continue
        if opener is None:
            report.add(
                "compression",
                f"Entry {name!r} is {kind}-compressed, which cannot be checked here; save the "
                "image with `docker save`, which writes layers uncompressed.",
            )
            return stored
        source = Prefixed(head, stream)
        try:
            with opener(source) as unpacking:
                return measure_compressed(unpacking, source, name, index.budget, report.add)
        except (OSError, EOFError, zlib.error, lzma.LZMAError):
            report.add("corrupt", f"Entry {name!r} looks {kind}-compressed but is corrupt.")
            return stored
    return stored


def _looks_like_json(data: bytes) -> bool:
    return data.lstrip()[:1] in (b"{", b"[")


def _check_layout(index: _Index, report: ArchiveReport, architecture: str | None, os: str) -> None:
    if "manifest.json" not in index.kinds:
        if "index.json" in index.kinds:
            report.add(
                "no_manifest",
                "The archive is an OCI layout without manifest.json; upload the archive "
                "`docker save` writes, which has both.",
            )
        elif "Dockerfile" in index.kinds:
            report.add(
                "no_manifest",
                "The archive is a build context (a Dockerfile), which this phase does not "
                "accept: upload the image `docker save` writes.",
            )
        else:
            report.add(
                "no_manifest",
                "The archive has no manifest.json: it is not an image saved with `docker save`.",
            )
        return
    manifest = _json(index, "manifest.json", report)
    if manifest is None:
        return
    if not isinstance(manifest, list) or not manifest:
        report.add("bad_manifest", "manifest.json lists no image.")
        return
    if len(manifest) > 1:
        report.add(
            "several_images",
            f"The archive holds {len(manifest)} images; save exactly one "
            "(`docker save IMAGE -o image.tar`).",
        )
        return
    _check_oci_index(index, report)
    entry = manifest[0]
    config_name = entry.get("Config") if isinstance(entry, dict) else None
    layers = entry.get("Layers") if isinstance(entry, dict) else None
    if not isinstance(config_name, str) or not isinstance(layers, list):
        report.add("bad_manifest", "manifest.json's entry needs a Config name and a Layers list.")
        return
    _check_layers(index, report, layers)
    config = _config(index, report, config_name)
    if config is not None:
        _check_config(config, report, len(layers), architecture, os)


def _check_oci_index(index: _Index, report: ArchiveReport) -> None:
    if "index.json" not in index.kinds:
        return
    oci_index = _json(index, "index.json", report)
    manifests = oci_index.get("manifests") if isinstance(oci_index, dict) else None
    if not isinstance(manifests, list):
        report.add("bad_manifest", "index.json has no manifests list.")
    elif len(manifests) != 1:
        report.add(
            "several_images",
            f"index.json lists {len(manifests)} images; save exactly one, for one platform.",
        )


def _check_layers(index: _Index, report: ArchiveReport, layers: list[Any]) -> None:
    report.layers = len(layers)
    if len(layers) > MAX_LAYERS:
        report.add("too_many_layers", f"The image has {len(layers)} layers; at most {MAX_LAYERS}.")
    for layer in layers:
        if not isinstance(layer, str) or index.resolve(entry_name(layer)) is None:
            report.add(
                "missing_layer", f"Layer {layer!r} named by manifest.json is not in the archive."
            )


def _config(index: _Index, report: ArchiveReport, name: str) -> dict[str, Any] | None:
    resolved = index.resolve(entry_name(name))
    if resolved is None:
        report.add("missing_config", f"The image config {name!r} is not in the archive.")
        return None
    if resolved not in index.small:
        report.add(
            "bad_config",
            f"The image config {name!r} is not a JSON file of at most {format_size(SMALL_BYTES)}.",
        )
        return None
    digest = hashlib.sha256(index.small[resolved]).hexdigest()
    claimed = posixpath.basename(resolved).removesuffix(".json")
    if _HEX64.fullmatch(claimed) and claimed != digest:
        report.add(
            "corrupt",
            f"The image config {name!r} does not match its digest; the archive is corrupt.",
        )
        return None
    config = _json(index, resolved, report)
    if not isinstance(config, dict):
        report.add("bad_config", f"The image config {name!r} is not a JSON object.")
        return None
    report.image_id = f"sha256:{digest}"
    return config


def _check_config(
    config: dict[str, Any], report: ArchiveReport, layers: int, architecture: str | None, os: str
) -> None:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != layers:
        report.add("bad_config", "The image config's layer list does not match manifest.json.")
    if config.get("os") != os:
        report.add("platform", f"The image is for {config.get('os')!r}; the workers run {os}.")
    if architecture and config.get("architecture") != architecture:
        report.add(
            "platform",
            f"The image is for {config.get('architecture')!r}; the workers run {architecture} "
            f"(build with --platform {os}/{architecture}).",
        )
    settings = config.get("config") or {}
    if not isinstance(settings, dict):
        report.add("bad_config", "The image config's settings are not a JSON object.")
        return
    if settings.get("Volumes"):
        report.add(
            "volume",
            f"The image declares VOLUME {sorted(settings['Volumes'])}; the container may write "
            "only to /output, so remove the VOLUME instruction.",
        )
    if settings.get("Entrypoint"):
        report.add(
            "entrypoint",
            f"The image sets ENTRYPOINT {settings['Entrypoint']}; put the whole command in CMD "
            "and add `ENTRYPOINT []` to the Dockerfile.",
        )
    command = settings.get("Cmd") or []
    if not command or not all(isinstance(part, str) for part in command):
        report.add(
            "no_command",
            "The image has no CMD: set the command that writes /output/predictions.csv.",
        )
    else:
        report.command = list(command)
    working_dir = settings.get("WorkingDir") or "/"
    report.working_dir = working_dir if isinstance(working_dir, str) else "/"


def _json(index: _Index, name: str, report: ArchiveReport) -> Any:
    resolved = index.resolve(name)
    data = index.small.get(resolved) if resolved else None
    if data is None:
        report.add(
            "bad_manifest", f"{name} is not a JSON file of at most {format_size(SMALL_BYTES)}."
        )
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        report.add("bad_manifest", f"{name} is not valid JSON ({exc}).")
        return None
