"""The HTTP side of webhooks, without Django: vet an endpoint's address, then POST to
exactly the address that was vetted.

An endpoint may only be http(s), without credentials in the URL. Unless private addresses
are allowed, every address its host name resolves to must be global (not private,
loopback, link-local, shared, reserved or multicast). The connection is made to the
vetted address itself, with the name kept for the Host header and TLS (SNI and the
certificate check), so a name that resolves elsewhere a moment later (DNS rebinding) is
never reached. No proxy, no redirect.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

NOT_HTTP = "A webhook URL starts with http:// or https:// and names a host."


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with its query
    address: str | None  # None: connect by name (private addresses allowed)


class Refused(Exception):
    """The endpoint may not be reached; the message says why."""


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_global and not ip.is_multicast


def target_for(url: str, *, allow_private: bool) -> Target:
    """Where a POST to `url` goes. Raises Refused."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise Refused(f"The URL is not valid: {exc}.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(NOT_HTTP)
    if parts.username or parts.password:
        raise Refused("A webhook URL carries no user name or password: the signature is the proof.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    target = Target(parts.scheme, parts.hostname, port, path, None)
    if allow_private:
        return target
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise Refused(f"The host {parts.hostname} does not resolve.") from exc
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if not address_allowed(address):
            raise Refused(
                f"{parts.hostname} is a private, loopback or reserved address ({address})."
            )
    return Target(parts.scheme, parts.hostname, port, path, addresses[0])


class _Connection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address or self.host, self.port), self.timeout)


class _TLSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self.tls)
        self.address = target.address

    def connect(self) -> None:
        raw = socket.create_connection((self.address or self.host, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


def post(target: Target, *, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST `body` to `target`; the answer's status code (its body is not read). Raises
    OSError (refused, timed out, TLS) or http.client.HTTPException.

    `timeout` bounds each network operation and also, once connected, the whole exchange:
    an endpoint that drips its answer a byte at a time is cut off at the deadline."""
    kind = _TLSConnection if target.scheme == "https" else _Connection
    connection = kind(target, timeout)
    cut = threading.Event()
    timer = threading.Timer(timeout, _cut_off, args=(connection, cut))
    timer.start()
    late = TimeoutError(f"no complete answer within {timeout:g} s")
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        if cut.is_set():
            raise late from exc
        raise
    finally:
        timer.cancel()
        connection.close()
    if cut.is_set():  # a cut answer can still parse, from what came before the cut
        raise late
    return status


def _cut_off(connection: http.client.HTTPConnection, cut: threading.Event) -> None:
    """Unblock the exchange's read or write: shut its socket down."""
    cut.set()
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)
