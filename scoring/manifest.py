"""The manifest's pure parts: how a viewer may read one, and what describes the host and
the platform that wrote it (docs/manifest.md). The database side, which builds and records
manifests, is judging.manifest; reading the recorded runs is competitions.selectors_runs.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "manifest.schema.json"


def manifest_for_viewer(manifest: dict[str, Any], *, private_visible: bool) -> dict[str, Any]:
    """The manifest as a viewer may read it: before the private leaderboard is revealed,
    nothing about the private split (its scores, its size) is shown to non-organizers."""
    if private_visible:
        return manifest
    shown = {**manifest, "scores": dict(manifest.get("scores", {}))}
    shown["scores"].pop("private", None)
    truth = dict(manifest.get("ground_truth", {}))
    truth["rows"] = {**truth.get("rows", {}), "private": None}
    shown["ground_truth"] = truth
    shown["withheld"] = ["scores.private", "ground_truth.rows.private"]
    return shown


@functools.cache
def host_description() -> dict[str, Any]:
    """The worker host in the terms of MLPerf's system description, where they apply."""
    cpu = _cpuinfo()
    gpus = _gpus()
    return {
        "system_name": socket.gethostname(),
        "host_processor_model_name": cpu.get("model name") or platform.processor() or None,
        "host_processors_per_node": cpu.get("sockets"),
        "host_processor_core_count": cpu.get("cores"),
        "host_processor_thread_count": os.cpu_count(),
        "host_memory_capacity_bytes": _meminfo_bytes("MemTotal"),
        "accelerators_per_node": len(gpus),
        "accelerator_model_name": gpus[0]["name"] if gpus else None,
        "accelerator_driver_version": gpus[0]["driver"] if gpus else None,
        "accelerator_memory_capacity": gpus[0]["memory"] if gpus else None,
        "operating_system": _os_name(),
        "kernel": platform.release(),
        "architecture": platform.machine(),
        "docker_version": _docker_version(),
        "python": platform.python_version(),
    }


def _cpuinfo() -> dict[str, Any]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    model, sockets, cores = None, set(), set()
    for block in text.split("\n\n"):
        fields = {
            k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block.splitlines())
        }
        model = model or fields.get("model name")
        if "physical id" in fields:
            sockets.add(fields["physical id"])
            cores.add((fields["physical id"], fields.get("core id")))
    return {
        "model name": model,
        "sockets": len(sockets) or None,
        "cores": len(cores) or None,
    }


def _meminfo_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gpus() -> list[dict[str, str]]:
    if shutil.which("nvidia-smi") is None:
        return []
    query = "--query-gpu=name,driver_version,memory.total"
    try:
        done = subprocess.run(
            ["nvidia-smi", query, "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in done.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"name": parts[0], "driver": parts[1], "memory": parts[2]})
    return gpus


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def _docker_version() -> str | None:
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            return str(client.version().get("Version")) or None
        finally:
            client.close()
    except Exception:  # no engine here: the manifest says so with null
        return None


def _git_commit() -> str:
    commit = os.environ.get("HELDOUT_GIT_COMMIT", "").strip()
    if commit:
        return commit
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


# Read once, when the process starts: a checkout changing under a running worker does not
# change the code the worker runs.
_PLATFORM_VERSION = _git_commit()


def platform_version() -> str:
    return _PLATFORM_VERSION
