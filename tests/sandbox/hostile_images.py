"""Builders for the container-submission tests: hand-made archives and hostile images.

Archives are made with tarfile, without an engine. Images are built OFFLINE (network
"none", nothing pulled) from the scorer image: first a slim Python image (the scorer image's
interpreter and standard library, about 35 MB, so that every saved archive stays small),
then one tiny image per hostile script on top of it. Each image is tagged by a hash of
everything that went into it, so later runs reuse it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import docker

TEST_REPOSITORY = "heldout-test-image"
SCORER_LABEL = "heldout.test-image.scorer"

# The scorer image's Python, standard library and the few shared libraries they need, on
# an empty base: no package manager, no pip, nothing to reach the network with.
SLIM_DOCKERFILE = """
FROM {base} AS full
USER 0
RUN set -e; \\
    mkdir -p /slim/bin /slim/usr/bin /slim/usr/lib /slim/usr/local/bin \\
             /slim/lib/x86_64-linux-gnu /slim/lib64 /slim/tmp /slim/etc /slim/app; \\
    cp -L /bin/dash /slim/bin/sh; \\
    cp -L /usr/bin/python3.11 /slim/usr/bin/python3; ln -s python3 /slim/usr/bin/python; \\
    cp -a /usr/lib/python3.11 /slim/usr/lib/; \\
    rm -rf /slim/usr/lib/python3.11/test /slim/usr/lib/python3.11/ensurepip \\
           /slim/usr/lib/python3.11/idlelib /slim/usr/lib/python3.11/lib2to3; \\
    for lib in libc.so.6 libm.so.6 libz.so.1 libexpat.so.1; do \\
        cp -L /lib/x86_64-linux-gnu/$lib /slim/lib/x86_64-linux-gnu/; done; \\
    cp -L /lib64/ld-linux-x86-64.so.2 /slim/lib64/; \\
    cp /etc/passwd /etc/group /slim/etc/; chmod 1777 /slim/tmp
FROM scratch
COPY --from=full /slim /
ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
USER 65534
WORKDIR /app
CMD ["python3"]
"""

SCRIPT_DOCKERFILE = """
FROM {base}
COPY run.py /app/run.py
{extra}
WORKDIR /app
CMD ["python3", "run.py"]
"""


# --- Hand-made archives ------------------------------------------------------------------


def file_entry(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def dir_entry(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, None


def link_entry(name: str, target: str, *, hard: bool = False) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, None


def special_entry(name: str, kind: bytes = tarfile.CHRTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = kind, 1, 3  # /dev/null's numbers
    return info, None


def tar_bytes(
    entries: Sequence[tuple[tarfile.TarInfo, bytes | None]], *, gz: bool = False
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buffer.getvalue()
    return gzip.compress(raw) if gz else raw


def layer(files: dict[str, bytes]) -> bytes:
    return tar_bytes([file_entry(name, data, 0o755) for name, data in files.items()])


def image_config(layers: list[bytes], **settings: object) -> bytes:
    """An image config for `layers`; `settings` go into its `config` (Cmd, Volumes, ...),
    except os and architecture, which go at the top."""
    top = {"os": settings.pop("os", "linux"), "architecture": settings.pop("architecture", "amd64")}
    config = {"Cmd": ["/app/run"], "WorkingDir": "/", **settings}
    diff_ids = [f"sha256:{hashlib.sha256(data).hexdigest()}" for data in layers]
    body = {**top, "config": config, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    return json.dumps(body).encode()


def legacy_entries(
    layers: list[bytes],
    *,
    config: bytes | None = None,
    repo_tags: list[str] | None = None,
) -> tuple[list[tuple[tarfile.TarInfo, bytes | None]], dict]:
    """The entries `docker save` (before Docker 25) writes for one image, and its manifest
    entry: <id>/layer.tar per layer, <config digest>.json, then manifest.json."""
    config = config if config is not None else image_config(layers)
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = []
    names = []
    for data in layers:
        layer_id = hashlib.sha256(b"layer" + data).hexdigest()
        entries += [dir_entry(layer_id), file_entry(f"{layer_id}/layer.tar", data)]
        names.append(f"{layer_id}/layer.tar")
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    entries.append(file_entry(config_name, config))
    return entries, {"Config": config_name, "RepoTags": repo_tags, "Layers": names}


def legacy_archive(
    layers: list[bytes],
    *,
    config: bytes | None = None,
    repo_tags: list[str] | None = None,
    extra: Sequence[tuple[tarfile.TarInfo, bytes | None]] = (),
    gz: bool = False,
) -> bytes:
    entries, manifest = legacy_entries(layers, config=config, repo_tags=repo_tags)
    entries += list(extra)
    entries.append(file_entry("manifest.json", json.dumps([manifest]).encode()))
    return tar_bytes(entries, gz=gz)


def merged_archive(*archives: bytes) -> bytes:
    """One archive holding the images of several, as `docker save a b` writes it."""
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = []
    manifests: list[dict] = []
    seen: set[str] = set()
    for data in archives:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for info in tar:
                content = tar.extractfile(info).read() if info.isreg() else None  # type: ignore[union-attr]
                if info.name == "manifest.json":
                    manifests += json.loads(content or b"[]")
                elif info.name != "repositories" and info.name not in seen:
                    seen.add(info.name)
                    entries.append((info, content))
    entries.append(file_entry("manifest.json", json.dumps(manifests).encode()))
    return tar_bytes(entries)


def oci_archive(legacy: bytes) -> bytes:
    """The layout Docker 25+ writes for the same image: blobs/sha256/<digest> for layers,
    config and manifest, index.json, oci-layout, and a manifest.json naming the blobs."""
    with tarfile.open(fileobj=io.BytesIO(legacy)) as tar:
        files = {i.name: tar.extractfile(i).read() for i in tar if i.isreg()}  # type: ignore[union-attr]
    (entry,) = json.loads(files["manifest.json"])
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return digest, len(data)

    config_digest, config_size = blob(files[entry["Config"]])
    layer_refs = [blob(files[name]) for name in entry["Layers"]]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": f"sha256:{config_digest}",
            "size": config_size,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": f"sha256:{d}",
                "size": n,
            }
            for d, n in layer_refs
        ],
    }
    manifest_digest, manifest_size = blob(json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": f"sha256:{manifest_digest}",
                "size": manifest_size,
                "annotations": {"io.containerd.image.name": "docker.io/library/mine:latest"},
            }
        ],
    }
    docker_manifest = [
        {
            "Config": f"blobs/sha256/{config_digest}",
            "RepoTags": entry.get("RepoTags"),
            "Layers": [f"blobs/sha256/{d}" for d, _ in layer_refs],
        }
    ]
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = [
        dir_entry("blobs"),
        dir_entry("blobs/sha256"),
    ]
    entries += [file_entry(f"blobs/sha256/{d}", data) for d, data in blobs.items()]
    entries += [
        file_entry("index.json", json.dumps(index).encode()),
        file_entry("manifest.json", json.dumps(docker_manifest).encode()),
        file_entry("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
    ]
    return tar_bytes(entries)


def sparse_layer(folder: Path, tar_format: str, *, apparent: int = 5 * 1024**3) -> bytes:
    """A layer of a few KiB holding `big`, a sparse file of `apparent` bytes, written by
    GNU tar (`--format=gnu`, `posix` for PAX 1.0, or `posix-0.0`, `posix-0.1`)."""
    source = folder / "rootfs"
    source.mkdir(parents=True, exist_ok=True)
    with (source / "big").open("wb") as f:
        f.truncate(apparent)  # as `truncate -s 5G big`: all hole, no data
    (source / "small").write_bytes(b"hi\n")
    name, _, version = tar_format.partition("-")
    extra = [f"--sparse-version={version}"] if version else []
    layer = folder / f"layer-{tar_format}.tar"
    command = ["tar", "--sparse", f"--format={name}", *extra, "-cf", str(layer)]
    subprocess.run([*command, "-C", str(source), "big", "small"], check=True)
    return layer.read_bytes()


def gzip_bomb(apparent: int, *, tar: bool = True) -> bytes:
    """A gzipped layer of a few MiB holding a tar of one file of `apparent` zero bytes (or,
    without `tar`, just the zeros). Made of repeated gzip members, which every gzip reader
    joins, so it is built in milliseconds."""
    mib = gzip.compress(bytes(1024**2), 9)
    parts = []
    if tar:
        info = tarfile.TarInfo("zeros")
        info.size = apparent
        parts.append(gzip.compress(info.tobuf(tarfile.PAX_FORMAT)))
    parts.append(mib * (apparent // 1024**2))
    if tar:
        parts.append(gzip.compress(bytes(-apparent % 512 + 1024)))
    return b"".join(parts)


# --- Images built offline ------------------------------------------------------------------


def content_tag(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def build_image(
    client: docker.DockerClient,
    *,
    name: str,
    dockerfile: str,
    files: dict[str, bytes],
    scorer_id: str,
) -> str:
    """Build once per content: the tag is a hash of the Dockerfile and files. The image is
    labelled with the scorer image it derives from, for clean_stale_images."""
    tag = f"{TEST_REPOSITORY}:{name}-{content_tag(dockerfile, repr(sorted(files.items())))}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    context = tar_bytes(
        [file_entry("Dockerfile", dockerfile.encode())]
        + [file_entry(path, data) for path, data in files.items()]
    )
    client.images.build(
        fileobj=io.BytesIO(context),
        custom_context=True,
        tag=tag,
        network_mode="none",
        pull=False,
        rm=True,
        forcerm=True,
        labels={SCORER_LABEL: scorer_id},
    )
    return tag


def clean_stale_images(client: docker.DockerClient, *, scorer_id: str) -> int:
    """Remove test images made from an older scorer image, once they are an hour old
    (another test run may still be using them). Returns how many tags went."""
    removed = 0
    old = time.time() - 3600
    stale = [
        image
        for image in client.images.list(filters={"label": SCORER_LABEL})
        if image.labels.get(SCORER_LABEL) != scorer_id and _created(image) < old
    ]
    # Children first: a parent whose last child goes is pruned with it.
    stale.sort(key=_created, reverse=True)
    for image in stale:
        for tag in image.tags:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(tag)
                removed += 1
    return removed


def _created(image) -> float:
    stamp = image.attrs.get("Created", "")[:19]
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()


def slim_python_image(client: docker.DockerClient, scorer_image: str) -> str:
    scorer_id = client.images.get(scorer_image).id
    clean_stale_images(client, scorer_id=scorer_id)
    return build_image(
        client,
        name=f"python-{scorer_id[7:19]}",
        dockerfile=SLIM_DOCKERFILE.format(base=scorer_id),
        files={},
        scorer_id=scorer_id,
    )


def script_image(
    client: docker.DockerClient, base: str, name: str, script: str, extra: str = ""
) -> str:
    dockerfile = SCRIPT_DOCKERFILE.format(base=base, extra=extra)
    scorer_id = client.images.get(base).labels.get(SCORER_LABEL, "")
    return build_image(
        client,
        name=name,
        dockerfile=dockerfile,
        files={"run.py": script.encode()},
        scorer_id=scorer_id,
    )


def save_image(client: docker.DockerClient, tag: str, path: Path) -> Path:
    """What `docker save TAG -o path` writes (the archive names the image TAG)."""
    with path.open("wb") as f:
        for chunk in client.images.get(tag).save(named=True):
            f.write(chunk)
    return path


# --- Hostile scripts -------------------------------------------------------------------------

# Every script that touches the network first proves the container has no interface but
# the loopback, and stops if it has: no test may ever send traffic to another address.
_ONLY_LOOPBACK = """
import os, sys
interfaces = sorted(os.listdir("/sys/class/net"))
print("interfaces:", ",".join(interfaces), flush=True)
if interfaces != ["lo"]:
    print("NOT SANDBOXED: stopping before any traffic", flush=True)
    sys.exit(2)
"""

NETWORK_EGRESS = (
    _ONLY_LOOPBACK
    + """
import socket
port = int(open("/input/test/target.txt").read())
reached = []
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            s.connect((host, port))
            s.sendall(b"stolen labels")
            reached.append(host)
    except OSError as exc:
        print(f"connect to {host} port {port} failed: {exc}", flush=True)
print("reached:", ",".join(reached) or "nothing", flush=True)
sys.exit(1)
"""
)

DNS_LOOKUP = (
    _ONLY_LOOPBACK
    + """
import socket
try:
    print("resolved:", socket.getaddrinfo("example.org", 443), flush=True)
except OSError as exc:
    print(f"lookup failed: {exc}", flush=True)
sys.exit(1)
"""
)

FORK_BOMB = """
import os, sys, time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        children += 1
except OSError as exc:
    print(f"fork refused after {children} children: {exc}", flush=True)
sys.exit(1)
"""

MEMORY_HOG = """
blocks = []
while True:
    blocks.append(b"\\x01" * (16 * 1024 * 1024))
    print(f"holding {16 * len(blocks)} MiB", flush=True)
"""

CPU_SPIN = """
print("spinning", flush=True)
while True:
    pass
"""

HUGE_STDOUT = """
import sys
line = "x" * 1023 + "\\n"
while True:
    sys.stdout.write(line)
"""

HUGE_OUTPUT_FILE = """
with open("/output/predictions.csv", "w") as f:
    f.write("id,label\\n")
    while True:
        f.write("x" * (1024 * 1024))
"""

WRITE_OUTSIDE_OUTPUT = """
import os, sys
targets = [
    "/heldout-was-here",
    "/etc/passwd",
    "/app/run.py",
    "/usr/bin/python3",
    "/input/test/test.csv",
    "/input/test/new-file",
    "/input/heldout-was-here",
]
wrote = []
for path in targets:
    try:
        with open(path, "a") as f:
            f.write("tampered\\n")
        wrote.append(path)
    except OSError as exc:
        print(f"{path}: {exc.strerror}", flush=True)
for path in ("/input/test/test.csv", "/app/run.py"):
    try:
        os.chmod(path, 0o777)
        wrote.append("chmod " + path)
    except OSError as exc:
        print(f"chmod {path}: {exc.strerror}", flush=True)
print("WROTE " + ",".join(wrote) if wrote else "wrote nothing outside /output", flush=True)
sys.exit(1)
"""

# The test's probe file holds the ground truth's sha256 and its first line (hex), which
# is in no other file: the truth is found if any readable file has either.
_SCAN = """
import hashlib, os, sys
digest, marker = open("/input/test/probe.txt").read().split()
marker = bytes.fromhex(marker)
found, files, size = [], 0, 0
for root, dirs, names in os.walk("/"):
    if root == "/":
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
    for name in names:
        path = os.path.join(root, name)
        try:
            if not os.path.isfile(path) or os.path.islink(path):
                continue
            with open(path, "rb") as f:
                data = f.read(64 * 1024 * 1024)
        except OSError:
            continue
        files += 1
        size += len(data)
        if marker in data or hashlib.sha256(data).hexdigest() == digest:
            found.append(path)
mounts = [line.split()[4] for line in open("/proc/self/mountinfo")]
print("mount points:", " ".join(sorted(mounts)), flush=True)
print(f"scanned {files} files, {size} bytes", flush=True)
print("truth found:", " ".join(found) or "nowhere", flush=True)
"""
TRUTH_SCAN = _SCAN + "sys.exit(1)\n"

SETUID_ESCALATION = """
import os, subprocess, sys
ran = subprocess.run(
    ["/usr/local/bin/rootpy", "-c", "import os; print(os.geteuid())"],
    capture_output=True, text=True,
)
print(f"setuid-root copy of python ran with euid {ran.stdout.strip()}", flush=True)
try:
    os.setuid(0)
    print("ESCALATED to root", flush=True)
except PermissionError as exc:
    print(f"setuid(0) refused: {exc}", flush=True)
sys.exit(1)
"""
# Makes /usr/local/bin/rootpy: a copy of python, owned by root, with the setuid bit.
SETUID_DOCKERFILE = """USER 0
RUN ["python3", "-c", "import os, shutil; shutil.copy('/usr/bin/python3', '/usr/local/bin/rootpy'); os.chmod('/usr/local/bin/rootpy', 0o4755)"]
USER 65534"""

# A well-behaved submission: predicts label 1 where the feature x > 0.5.
PREDICT_ONLY = """
import csv, os
with open("/input/test/test.csv", newline="") as f:
    rows = list(csv.DictReader(f))
with open("/output/predictions.csv", "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["id", "label"])
    for row in rows:
        out.writerow([row["id"], 1.0 if float(row["x"]) > 0.5 else 0.0])
print(f"predicted {len(rows)} rows in {os.getcwd()}", flush=True)
"""
# The same, then a scan of every file it can read for the ground truth (it must find none).
PREDICT = PREDICT_ONLY + _SCAN
