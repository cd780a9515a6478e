"""The sandbox as this deployment configures it: the platform's limits (HELDOUT_SANDBOX_*
settings) with a task's overrides, and this process's Docker runner.

Both the domain (a bundle's limits, a scoring program's dry run) and the workers (judging)
use these; the mechanism is the engine's (scoring.limits, scoring.sandbox,
scoring.sandbox_docker).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings

from scoring.limits import LIMIT_MINIMUMS, sandbox_limits_from
from scoring.sandbox import SandboxLimits
from scoring.sandbox_docker import DockerRunner
from scoring.warm import WarmDockerRunner


def sandbox_limits(*, overrides: Mapping[str, object] | None = None) -> SandboxLimits:
    """The platform's limits with a task's overrides.

    Raises ValueError for an unknown key or a value below its minimum. (Any time limit is
    safe from the reaper: running work heartbeats, see competitions.heartbeat.)
    """
    defaults = {key: getattr(settings, f"HELDOUT_SANDBOX_{key.upper()}") for key in LIMIT_MINIMUMS}
    return sandbox_limits_from(defaults=defaults, overrides=overrides)


@functools.cache
def sandbox_runner() -> DockerRunner:
    """This process's Docker runner. Its client connects on first use, so in the process
    that uses it, never in a prefork parent whose connection the children would share.
    With HELDOUT_SANDBOX_WARM it keeps the built-in scorer warm (scoring.warm), its
    containers' /input folders in HELDOUT_WORK_DIR."""
    if settings.HELDOUT_SANDBOX_WARM:
        return WarmDockerRunner(
            deployment=settings.HELDOUT_DEPLOYMENT_ID,
            root=Path(settings.HELDOUT_WORK_DIR),
            idle_s=settings.HELDOUT_SANDBOX_WARM_IDLE_S,
        )
    return DockerRunner(deployment=settings.HELDOUT_DEPLOYMENT_ID)


def sandbox_runner_close() -> None:
    """Remove this process's warm scorers, if it has any (the worker stops)."""
    if sandbox_runner.cache_info().currsize:
        runner = sandbox_runner()
        if isinstance(runner, WarmDockerRunner):
            runner.close()
        sandbox_runner.cache_clear()
