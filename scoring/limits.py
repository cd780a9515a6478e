"""A sandbox's limits from the platform's defaults and a task's overrides.

Contract: `sandbox_limits_from(defaults=..., overrides=...)` takes both as mappings keyed by
the lower-case tail of a HELDOUT_SANDBOX_* setting (memory_mb, cpus, ...) and returns
SandboxLimits, or raises ValueError for an unknown key, a value that is not a number, or one
below its minimum. Reading the settings is the caller's (competitions.sandboxes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from scoring.sandbox import SandboxLimits

MIB = 1024**2
# The smallest value of each key the engine accepts and that leaves a scorer a chance
# (pids_limit=0 would even mean "unlimited").
LIMIT_MINIMUMS: dict[str, float] = {
    "memory_mb": 16,
    "cpus": 0.01,
    "pids": 8,
    "timeout_s": 1,
    "tmpfs_mb": 1,
    "output_mb": 1,
    "log_kb": 1,
}


def sandbox_limits_from(
    *, defaults: Mapping[str, float], overrides: Mapping[str, object] | None = None
) -> SandboxLimits:
    """`defaults` (every key of LIMIT_MINIMUMS) with `overrides` applied."""
    values = {key: float(defaults[key]) for key in LIMIT_MINIMUMS}
    for key, value in (overrides or {}).items():
        if key not in LIMIT_MINIMUMS:
            raise ValueError(f"unknown sandbox limit {key!r} (known: {', '.join(LIMIT_MINIMUMS)})")
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise ValueError(f"the sandbox limit {key} must be a number, not {value!r}")
        values[key] = float(value)
    for key, minimum in LIMIT_MINIMUMS.items():
        if not minimum <= values[key] < math.inf:
            raise ValueError(f"the sandbox limit {key} must be at least {minimum:g}")
    return SandboxLimits(
        memory_bytes=int(values["memory_mb"] * MIB),
        cpus=values["cpus"],
        pids=int(values["pids"]),
        timeout_s=values["timeout_s"],
        tmpfs_bytes=int(values["tmpfs_mb"] * MIB),
        output_bytes=int(values["output_mb"] * MIB),
        log_bytes=int(values["log_kb"] * 1024),
    )
