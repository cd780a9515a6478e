"""The labels that mark a sandbox container as the platform's, and what makes one stale.

Every DockerRunner container is labelled with its deployment (DEPLOYMENT_LABEL, when the
runner has one) and its absolute wall-clock deadline (DEADLINE_LABEL: creation time plus
the time limit), so that `cleanup_stale`, run on every worker host, can kill what a dead
worker left running without touching another deployment's containers on a shared engine.
`_is_stale` decides, from a container's labels and status alone, whether it is left over.
"""

from __future__ import annotations

import socket
from pathlib import Path

SANDBOX_LABEL = "heldout.sandbox"
# Seconds since the epoch at which the run's time limit ends.
DEADLINE_LABEL = "heldout.sandbox.deadline"
# Which deployment (HELDOUT_DEPLOYMENT_ID) made the container or image.
DEPLOYMENT_LABEL = "heldout.deployment"
# The process that started the container: lets tests (and people) tell whose it is when
# several workers share one engine.
OWNER_LABEL = "heldout.sandbox.owner"
STARTED_LABEL = "heldout.sandbox.started"
# On a warm scorer (scoring.warm): its owner process's start time (process_started), so
# that a clean-up on the owner's host knows it is gone even when its pid was reused.
WARM_LABEL = "heldout.sandbox.warm"
# A container left past its time limit by this much belongs to a dead worker.
STALE_GRACE_S = 60.0
# What a deployment id may be: it goes into labels and image repository names.
DEPLOYMENT_PATTERN = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"


def _is_stale(labels: dict[str, str], status: str, now: float, grace_s: float) -> bool:
    if WARM_LABEL in labels and _owner_gone(labels):
        return True  # a warm scorer whose worker process died (it serves no one else)
    deadline = _float_label(labels, DEADLINE_LABEL)
    started = _float_label(labels, STARTED_LABEL)
    if deadline is not None and now > deadline + grace_s:
        return True
    return status != "running" and (started is None or now - started > grace_s)


def process_started(pid: int) -> str:
    """When process `pid` of this host started (clock ticks since boot), "" if unknown."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count after its end.
    fields = stat_line[stat_line.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else ""


def _owner_gone(labels: dict[str, str]) -> bool:
    """Whether the process that owns a warm scorer is known to be gone: it was on this
    host and its pid is dead or now another process's. Another host's owner: unknown."""
    host, _sep, pid = labels.get(OWNER_LABEL, "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    started = labels.get(WARM_LABEL, "")
    now_started = process_started(int(pid))
    return not now_started or bool(started and now_started != started)


def _float_label(labels: dict[str, str], name: str) -> float | None:
    try:
        return float(labels[name])
    except (KeyError, ValueError):
        return None
