"""A container's attach stream as a line protocol: JSON lines written to its stdin, JSON
lines read from its stdout, which the engine multiplexes with stderr in frames (an 8-byte
header: the stream, 3 zero bytes, the payload's size big-endian). Used by scoring.warm to
talk to scoring.warm_server; every read has a deadline."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import time
from typing import Any


class AttachStream:
    """The attach stream of a container: JSON lines to its stdin, JSON lines from its
    stdout (the engine's multiplexed frames; stderr is kept as a short tail)."""

    MAX_LINE = 1 << 20

    def __init__(self, sock: Any) -> None:
        self._io = sock
        self._sock: socket.socket = getattr(sock, "_sock", sock)
        self._out = bytearray()
        self.errors = bytearray()

    def send(self, message: dict[str, Any]) -> None:
        self._sock.settimeout(30)
        self._sock.sendall(json.dumps(message).encode() + b"\n")

    def receive(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self._out:
            kind, payload = self._frame(deadline)
            if kind == 1:
                self._out += payload
                if len(self._out) > self.MAX_LINE:
                    raise ValueError("its answer is too long")
            else:
                self.errors = (self.errors + payload)[-4096:]
        line, _sep, rest = bytes(self._out).partition(b"\n")
        self._out = bytearray(rest)
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError(f"it answered {line[:200]!r}")
        return message

    def _frame(self, deadline: float) -> tuple[int, bytes]:
        header = self._exactly(8, deadline)
        kind, size = header[0], struct.unpack(">I", header[4:])[0]
        return kind, self._exactly(size, deadline)

    def _exactly(self, size: int, deadline: float) -> bytes:
        data = bytearray()
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("it did not answer in time")
            self._sock.settimeout(remaining)
            chunk = self._sock.recv(min(size - len(data), 1 << 16))
            if not chunk:
                tail = self.errors.decode(errors="replace")[-500:]
                raise EOFError(f"it stopped{': ' + tail if tail else ''}")
            data += chunk
        return bytes(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(OSError):
            self._io.close()
