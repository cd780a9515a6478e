"""A loopback HTTP server that receives webhook deliveries, for tests: it records each
request and answers with the next code of `codes` (the last one once they run out)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


@dataclass
class Endpoint:
    url: str
    codes: list[int]
    received: list[Received] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        """The first `count` requests, once they arrived; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"{len(self.received)} of {count} requests came"
        return self.received[:count]


@contextmanager
def webhook_endpoint(
    codes: list[int] | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[Endpoint]:
    """`tls`: serve https://localhost:<port>/hook with this server context."""
    endpoint = Endpoint(url="", codes=list(codes or [200]))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            endpoint.received.append(Received(dict(self.headers), body, time.monotonic()))
            n = len(endpoint.received)
            code = endpoint.codes[min(n, len(endpoint.codes)) - 1]
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        endpoint.url = f"https://localhost:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
