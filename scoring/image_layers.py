"""Reading an image archive's layers forwards, with bounds, to measure what they unpack to.

Pure: no Django, no Docker. A layer is a tar (docker save writes it plain, other tools
gzip it); the engine writes each of its files at its apparent size, so a 10 KiB layer may
hold a 5 GiB sparse file. `layer_entries` reads a layer's headers only, as the engine's tar
reader (Go's archive/tar) understands them, and skips the data without reading it where
the stream can seek. It never parses a sparse map: a sparse entry is reported with its real
size (old GNU type 'S', PAX 0.0, 0.1 and 1.0), for the caller to refuse.

`Forward` is the reader everything here goes through: it refuses any single read larger
than `MAX_READ` (a tar header claiming gigabytes would otherwise be read into memory), skips
forwards by seeking or by reading and dropping, and gives up past its deadline, raising
`Refused`. A compressed stream's output is therefore counted and bounded as it is read.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

BLOCK = 512
CHUNK = 1024 * 1024
MAX_READ = 4 * CHUNK  # the largest single read: a tar header, or one chunk of data
MAX_LAYER_FILES = 1_000_000  # in all layers together
TRAILING_BYTES = 1024 * 1024  # what a compressed layer may hold after its tar's end
MAX_RATIO = 100  # real layers compress 2 to 10 times; gzip reaches 1000, bzip2 and xz more
RATIO_FLOOR = 64 * CHUNK  # unpacked bytes before the ratio is judged
_ZERO_BLOCK = bytes(BLOCK)
# Types whose header has no data after it, as Go's archive/tar skips them.
_HEADER_ONLY = frozenset(b"123456")
# Openers return a stream the caller reads within a `with`.
COMPRESSIONS: dict[bytes, tuple[str, Callable[[Any], io.BufferedIOBase] | None]] = {
    b"\x1f\x8b": ("gzip", lambda f: gzip.GzipFile(fileobj=f)),
    b"BZh": ("bzip2", lambda f: bz2.BZ2File(f)),
    b"\xfd7zXZ\x00": ("xz", lambda f: lzma.LZMAFile(f)),  # noqa: SIM115
    b"\x28\xb5\x2f\xfd": ("zstd", None),  # no decompressor in the standard library
}


class Refused(Exception):
    """Stops reading the archive: `code` and `message` are the problem to report."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Add = Callable[[str, str], None]  # reports a problem: its code and sentence


def format_size(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


@dataclass
class Budget:
    """What the archive unpacks to so far, its limit, and until when it may be read."""

    max_bytes: int
    deadline: float | None = None
    used: int = 0
    layer_files: int = 0

    def spend(self, n: int) -> None:
        self.used += n
        if self.used > self.max_bytes:
            raise self.over()

    def over(self, detail: str = "") -> Refused:
        return Refused(
            "too_large_unpacked",
            f"The image unpacks to more than the limit of {format_size(self.max_bytes)}{detail}.",
        )


class LayerError(Exception):
    """A layer is not a tar the engine could read."""


@dataclass(frozen=True)
class LayerEntry:
    name: str
    type: bytes  # the tar type flag: b"0" a file, b"5" a folder, b"S" old GNU sparse, ...
    size: int  # apparent: what the engine writes (a sparse file's real size)
    sparse: str = ""  # the sparse format ("GNU", "PAX 1.0", ...), or "" if not sparse


class Forward:
    """`raw` read forwards: counted, skipped without keeping, bounded per read and in time.

    Seeks backwards only if `raw` can. `seekable()` says True either way, because tarfile
    (which reads the outer archive through this) asks before seeking forwards.
    """

    def __init__(
        self,
        raw: Any,
        *,
        deadline: float | None = None,
        can_seek: bool = True,
        packed: Callable[[], int] | None = None,
        what: str = "",
    ) -> None:
        self.raw = raw
        self.deadline = deadline
        self.pos = 0
        self._packed = packed  # bytes read from the compressed source, if `raw` unpacks one
        self._what = what
        # A decompressor "seeks" by decompressing again from the start: never ask it to.
        self._can_seek = can_seek and bool(getattr(raw, "seekable", lambda: False)())

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > MAX_READ:
            raise Refused(
                "header_too_large",
                f"The archive has a tar header or entry read of {n} bytes; at most "
                f"{MAX_READ // CHUNK} MiB is read at once, and real tar headers are far smaller.",
            )
        self._on_time()
        parts = []
        wanted = n
        while wanted > 0:
            data = self.raw.read(wanted)
            if not data:
                break
            parts.append(data)
            wanted -= len(data)
        data = b"".join(parts)
        self.pos += len(data)
        if self._packed is not None:
            ratio_check(self.pos, self._packed(), self._what)
        return data

    def read_exact(self, n: int) -> bytes:
        data = self.read(n)
        if len(data) < n:
            raise LayerError("it is cut short")
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self.pos + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR):
            raise OSError("only absolute and relative seeks")
        if self._can_seek:
            self.raw.seek(target - self.pos, io.SEEK_CUR)
            self.pos = target
        elif target >= self.pos:
            self.skip(target - self.pos)
        else:
            raise OSError("cannot seek backwards in a stream")
        return self.pos

    def skip(self, n: int) -> None:
        """Move `n` bytes on; reading (and dropping) them where `raw` cannot seek."""
        if self._can_seek:
            self.seek(n, io.SEEK_CUR)
            return
        while n > 0:
            data = self.read(min(n, CHUNK))
            if not data:
                raise LayerError("it is cut short")
            n -= len(data)

    def _on_time(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Refused(
                "too_slow",
                "Checking the archive took too long: it is compressed, and unpacking it to "
                "check it takes more than the time allowed. Upload the uncompressed tar "
                "`docker save` writes.",
            )


def ratio_check(unpacked: int, packed: int, what: str = "The archive") -> None:
    """Refuses a compressed stream that unpacks to more than MAX_RATIO times its size: no
    real layer does, and a bomb is then stopped after RATIO_FLOOR bytes, in well under a
    second, instead of at the size limit."""
    if unpacked > RATIO_FLOOR and unpacked > MAX_RATIO * packed:
        raise Refused(
            "bomb",
            f"{what} is compressed data that unpacks to more than {MAX_RATIO} times "
            f"its size ({format_size(packed)} to more than {format_size(unpacked)} so far); "
            "real images do not, so it was not unpacked further.",
        )


class Prefixed(io.RawIOBase):
    """`head`, then the rest of `stream`: an entry whose first bytes were already read.

    Seekable forwards when `stream` is, so a plain layer's data is skipped, not read.
    """

    def __init__(self, head: bytes, stream: IO[bytes] | io.BufferedIOBase) -> None:
        self._head = head
        self._stream = stream
        self.consumed = 0  # bytes read so far, the head's included

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(self._stream.seekable())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_CUR or offset < 0:
            raise OSError("Prefixed seeks forwards only")
        from_head = min(offset, len(self._head))
        self._head = self._head[from_head:]
        if offset > from_head:
            self._stream.seek(offset - from_head, io.SEEK_CUR)
        return 0

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
        else:
            data = self._stream.read(len(buffer))
            n = len(data)
            buffer[:n] = data
        self.consumed += n
        return n


class NoSparseMap(tarfile.TarInfo):
    """tarfile's entry, except that a sparse map is never read (a hostile map may claim
    millions of blocks): the archive is refused at the first sparse entry."""

    def _refuse(self, *args: object) -> None:
        raise Refused(
            "sparse_file",
            "The archive has a sparse entry; an image archive never does (sparse files are "
            "refused: the engine writes them in full).",
        )

    _proc_sparse = _proc_gnusparse_00 = _proc_gnusparse_01 = _proc_gnusparse_10 = _refuse


class Gunzipped:
    """A gzipped archive, unpacked as read; its errors are the archive's (cut short, corrupt),
    not those of a compressed layer inside it."""

    def __init__(self, fileobj: IO[bytes]) -> None:
        self._fileobj = fileobj
        self._gzip = gzip.GzipFile(fileobj=fileobj)

    def read(self, n: int) -> bytes:
        try:
            data = self._gzip.read(n)
            ratio_check(self._gzip.tell(), self._fileobj.tell())
            return data
        except EOFError:
            raise tarfile.ReadError("unexpected end of data") from None
        except (OSError, zlib.error) as exc:
            raise tarfile.ReadError(f"gzip: {exc}") from None


def is_tar(head: bytes) -> bool:
    """Whether `head` (at least one block) starts a ustar, PAX or GNU tar, as layers are."""
    return len(head) >= BLOCK and head[257:262] == b"ustar" and _checksum_ok(head[:BLOCK])


def layer_entries(reader: Forward) -> Iterator[LayerEntry]:
    """Each entry of the layer tar `reader` is at, until its end; data skipped, not read.

    Raises LayerError for a header the engine would not read either, or when cut short.
    """
    pax: dict[str, str] = {}
    long_name = ""
    while True:
        block = reader.read_exact(BLOCK)
        if block == _ZERO_BLOCK:
            return
        if not _checksum_ok(block):
            raise LayerError(f"a tar header at byte {reader.pos - BLOCK} is damaged")
        kind = block[156:157]
        size = _number(block[124:136])
        if kind in (b"x", b"g", b"L", b"K"):
            data = reader.read_exact(size)
            reader.skip(-size % BLOCK)
            if kind == b"x":
                pax.update(_pax_records(data))
            elif kind == b"L":
                long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            continue  # a global header ('g') or a long link name ('K') changes no size
        size = int(pax["size"]) if "size" in pax else size
        name = pax.get("path") or long_name or _ustar_name(block)
        yield _entry(block, kind, name, size, pax, reader)
        if kind not in _HEADER_ONLY:
            reader.skip(size + (-size % BLOCK))
        pax, long_name = {}, ""


def _entry(
    block: bytes, kind: bytes, name: str, size: int, pax: dict[str, str], reader: Forward
) -> LayerEntry:
    if kind == b"S":
        # Old GNU sparse: the real size is in the header, the map in blocks after it.
        extended = block[482]
        while extended:
            extended = reader.read_exact(BLOCK)[504]
        return LayerEntry(name, kind, _number(block[483:495]), "GNU")
    if "GNU.sparse.major" in pax or "GNU.sparse.realsize" in pax:
        version = f"{pax.get('GNU.sparse.major', '1')}.{pax.get('GNU.sparse.minor', '0')}"
        text = pax.get("GNU.sparse.realsize") or pax.get("GNU.sparse.size") or "0"
        return LayerEntry(pax.get("GNU.sparse.name", name), kind, _int(text), f"PAX {version}")
    if "GNU.sparse.size" in pax or "GNU.sparse.map" in pax:
        version = "PAX 0.1" if "GNU.sparse.map" in pax else "PAX 0.0"
        real = _int(pax.get("GNU.sparse.size", "0"))
        return LayerEntry(pax.get("GNU.sparse.name", name), kind, real, version)
    return LayerEntry(name, kind, size if kind not in _HEADER_ONLY else 0)


def measure_compressed(
    unpacking: io.BufferedIOBase, source: Prefixed, name: str, budget: Budget, add: Add
) -> int:
    """What the compressed entry `source` unpacks to (through `unpacking`): the files of the
    layer tar it holds, and the little allowed after its end. Reads no more than one chunk
    past the limit, and stops early when it unpacks far more than it weighs."""
    first = unpacking.read(BLOCK)
    reader = Forward(
        Prefixed(first, unpacking),
        deadline=budget.deadline,
        can_seek=False,
        packed=lambda: source.consumed,
        what=f"Entry {name!r}",
    )
    if not is_tar(first) and first != _ZERO_BLOCK:  # a tar without entries starts with zeros
        add("compression", f"Entry {name!r} is compressed but holds no tar: it is no layer.")
        return reader.pos
    measured = measure_layer(reader, name, budget, add)
    if measured is None:
        return reader.pos
    end = reader.pos
    if reader.read(TRAILING_BYTES + 1)[TRAILING_BYTES:]:
        add(
            "trailing_data",
            f"Layer {name!r} holds more than {format_size(TRAILING_BYTES)} after the end of "
            "its tar; the engine would unpack all of it.",
        )
    return measured + reader.pos - end


def measure_layer(reader: Forward, name: str, budget: Budget, add: Add) -> int | None:
    """The layer's files at their apparent sizes (a header's block each); refuses sparse
    files. None when the layer is not a tar the engine could read (the problem added)."""
    total = 0
    room = budget.max_bytes - budget.used
    try:
        for entry in layer_entries(reader):
            budget.layer_files += 1
            if budget.layer_files > MAX_LAYER_FILES:
                raise Refused(
                    "too_many_files",
                    f"The image's layers hold more than {MAX_LAYER_FILES} files together.",
                )
            if entry.sparse:
                add(
                    "sparse_file",
                    f"Layer {name!r} holds {entry.name!r}, a sparse file of "
                    f"{format_size(entry.size)} ({entry.sparse} format). Sparse files are "
                    "refused: the engine writes them in full. Make the file without holes "
                    "(not with `truncate`), or build the image with `docker build`.",
                )
            total += BLOCK + entry.size
            if total > room:
                raise budget.over(f": {entry.name!r} in layer {name!r} ({format_size(entry.size)})")
    except LayerError as exc:
        add("bad_layer", f"Layer {name!r} is not a tar the engine can read ({exc}).")
        return None
    return total


def _checksum_ok(block: bytes) -> bool:
    try:
        stored = int(block[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    signed = sum(b - 256 if b > 127 else b for b in block[:148] + block[156:]) + 8 * 32
    return stored in (unsigned, signed)


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or base-256 (GNU) when its first bit is set."""
    if field[:1] and field[0] & 0x80:
        if field[0] == 0xFF:
            raise LayerError("a tar header holds a negative size")
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise LayerError(f"a tar header holds a size that is not a number: {text!r}") from None


def _int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise LayerError(f"a PAX header holds a size that is not a number: {text!r}") from None
    if value < 0:
        raise LayerError("a PAX header holds a negative size")
    return value


def _pax_records(data: bytes) -> dict[str, str]:
    """`<length> <key>=<value>\\n` records, the length counting the whole record."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise LayerError("a PAX header is damaged") from None
        record = data[space + 1 : pos + length]
        if length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise LayerError("a PAX header is damaged")
        key, _, value = record[:-1].partition(b"=")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    if "size" in records:
        _int(records["size"])
    return records


def _ustar_name(block: bytes) -> str:
    name = block[:100].split(b"\0", 1)[0]
    if block[257:263] == b"ustar\0":  # POSIX: a prefix may hold the name's folders
        prefix = block[345:500].split(b"\0", 1)[0]
        name = prefix + b"/" + name if prefix else name
    return name.decode("utf-8", "surrogateescape")
