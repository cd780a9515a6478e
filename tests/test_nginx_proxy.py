"""deploy/nginx.conf in front of gunicorn, run for real (Debian's nginx, installed by
deploy/system-deps.sh; missing, these tests fail, never skip): with gunicorn able to serve
a single request at a time, four clients uploading at 50 KB/s through nginx still leave a
page answering within 100 ms, because nginx receives each body whole before gunicorn sees
the request. The file is used as written, except for addresses, ports and paths.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.test_uploads_live import _create, _headers, _status_line
from tests.web_process import free_port, web_process

pytestmark = pytest.mark.django_db(transaction=True)

CONF = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def test_the_proxy_takes_bodies_as_large_as_an_image_and_buffers_them():
    text = CONF.read_text()
    size = re.search(r"(?m)^\s*client_max_body_size (\d+)m;", text)
    assert size is not None
    assert int(size[1]) * 2**20 >= settings.HELDOUT_MAX_IMAGE_BYTES + 2**20
    assert "proxy_request_buffering off;" not in text.replace("`proxy_request_buffering off`", "")
    assert re.search(r"(?m)^\s*proxy_set_header X-Forwarded-Proto \$scheme;", text)


def _local_conf(tmp: Path, upstream: str, https_port: int) -> Path:
    """deploy/nginx.conf pointed at the test's gunicorn, ports and a self-signed cert."""
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    openssl += ["-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")]
    openssl += ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        openssl,
        check=True,
        capture_output=True,
    )
    for folder in ("body", "proxy"):
        (tmp / folder).mkdir()
    replacements = {
        "pid /tmp/nginx.pid;": f"pid {tmp}/nginx.pid;",
        "server web:8000;": f"server {upstream};",
        "listen 80;": f"listen 127.0.0.1:{free_port()};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "/etc/letsencrypt/live/example.org/fullchain.pem": str(tmp / "cert.pem"),
        "/etc/letsencrypt/live/example.org/privkey.pem": str(tmp / "key.pem"),
        "http {": f"http {{\n    client_body_temp_path {tmp}/body;\n    proxy_temp_path {tmp}/proxy;",
    }
    text = CONF.read_text()
    for old, new in replacements.items():
        assert old in text, f"deploy/nginx.conf no longer has {old!r}"
        text = text.replace(old, new, 1)
    if os.geteuid() == 0:  # workers would be `nobody`, who can't reach pytest's tmp dirs
        text = "user root;\n" + text
    conf = tmp / "nginx.conf"
    conf.write_text(text)
    return conf


@pytest.fixture
def proxied(tmp_path) -> Iterator[tuple[str, Path]]:
    """gunicorn serving one request at a time, behind nginx; yields nginx's URL and cert."""
    if not Path(NGINX).exists():
        pytest.fail("nginx is missing: deploy/system-deps.sh installs it")
    one_at_a_time = ("--workers", "1", "--threads", "1")
    with web_process(tmp_path / "gunicorn.log", *one_at_a_time) as upstream:
        port = free_port()
        conf = _local_conf(tmp_path, upstream.removeprefix("http://"), port)
        checked = subprocess.run([NGINX, "-t", "-c", str(conf)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        log = (tmp_path / "nginx.log").open("wb")
        proc = subprocess.Popen(
            [NGINX, "-c", str(conf), "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT
        )
        base = f"https://127.0.0.1:{port}"
        try:
            _wait_for(base, tmp_path / "cert.pem", proc)
            yield base, tmp_path / "cert.pem"
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()


def _wait_for(base: str, cert: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"nginx exited with {proc.returncode}")
        try:
            requests.get(base + "/", verify=str(cert), timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    pytest.fail("nginx did not answer")


def _slow_tls_patch(
    url: str, headers: dict, cert: Path, results: list, *, rate: int, seconds: float
) -> None:
    """A PATCH over TLS sending rate*seconds bytes at `rate` bytes/s."""
    total, piece = int(rate * seconds), rate // 10
    context = ssl.create_default_context(cafile=str(cert))
    path = "/" + url.split("/", 3)[3]
    with (
        socket.create_connection(
            ("127.0.0.1", int(url.split(":")[2].split("/")[0])), timeout=30
        ) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        lines = [f"PATCH {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += ["Content-Type: application/offset+octet-stream", "Upload-Offset: 0"]
        lines += [f"Content-Length: {total}", "Connection: close"]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for _ in range(total // piece):
            sock.sendall(b"n" * piece)
            time.sleep(0.1)
        results.append(_status_line(sock))


def test_behind_nginx_four_slow_uploaders_never_hold_the_single_gunicorn_thread(
    proxied, competition, participant
):
    base, cert = proxied
    headers = _headers(participant)
    rate, seconds = 50_000, 5.0
    created = [_create(base, headers, int(rate * seconds), verify=str(cert)) for _ in range(4)]
    # The upload URLs as nginx serves them (Django sees http: the test settings don't trust
    # X-Forwarded-Proto, production's do).
    urls = [base + "/" + url.split("/", 3)[3] for url in created]
    results: list[str] = []
    uploaders = [
        threading.Thread(
            target=_slow_tls_patch,
            args=(url, headers, cert, results),
            kwargs={"rate": rate, "seconds": seconds},
        )
        for url in urls
    ]
    for thread in uploaders:
        thread.start()
    time.sleep(0.5)

    timings: list[float] = []
    page = requests.Session()
    while any(thread.is_alive() for thread in uploaders) and len(timings) < 40:
        started = time.perf_counter()
        assert page.get(f"{base}/", verify=str(cert), timeout=10).status_code == 200
        timings.append(time.perf_counter() - started)
        time.sleep(0.1)
    for thread in uploaders:
        thread.join(timeout=30)

    assert max(timings) < 1.0, timings
    assert statistics.median(timings) < 0.1, timings
    assert len(timings) >= 10, "the uploads ended before the page was measured"
    assert results == ["HTTP/1.1 204 No Content"] * 4
    for url in urls:
        head = requests.head(url, headers=headers, verify=str(cert), timeout=10)
        assert head.headers["Upload-Offset"] == str(int(rate * seconds))
