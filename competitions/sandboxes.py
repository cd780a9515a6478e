"""The sandbox as this deployment configures it: the platform's limits (HELDOUT_SANDBOX_*
settings) with a task's overrides, and this process's Docker runner.

Both the domain (a bundle's limits, a scoring program's dry run) and the workers (judging)
use these; the mechanism is the engine's (scoring.limits, scoring.sandbox).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from django.conf import settings

from scoring.limits import LIMIT_MINIMUMS, sandbox_limits_from
from scoring.sandbox import DockerRunner, SandboxLimits


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
    that uses it, never in a prefork parent whose connection the children would share."""
    return DockerRunner(deployment=settings.HELDOUT_DEPLOYMENT_ID)
