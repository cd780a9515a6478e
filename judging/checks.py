"""System checks: settings that contradict each other are refused at start-up.

Run by every management command that checks (migrate, check, runserver) and by each
Celery worker as it starts (judging.signals). Ids heldout.E001 and up; docs/settings.md
lists them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

REAP_ENTRY = "reap-stale-submissions"
# A job is at most a container submission's two stages run one after the other.
STAGES_PER_JOB = 2


@register("heldout")
def recovery_settings_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Heartbeat, recovery, reaper and broker settings that cannot work together."""
    beat = float(settings.HELDOUT_HEARTBEAT_S)
    recover = float(settings.HELDOUT_RECOVER_AFTER_S)
    errors: list[Error] = []
    if beat <= 0 or recover <= 2 * beat:
        errors.append(
            Error(
                f"HELDOUT_RECOVER_AFTER_S ({recover:g}) must be more than twice "
                f"HELDOUT_HEARTBEAT_S ({beat:g}), itself above 0: otherwise one late "
                "heartbeat gets live work requeued.",
                hint="Keep the defaults (15 s and 90 s) or scale them together.",
                id="heldout.E001",
            )
        )
    entry = settings.CELERY_BEAT_SCHEDULE.get(REAP_ENTRY, {})
    period = entry.get("schedule")
    if not isinstance(period, int | float) or not 0 < period < recover:
        errors.append(
            Error(
                f"The reaper runs every {period} s (HELDOUT_REAP_EVERY_S); it must run more "
                f"often than HELDOUT_RECOVER_AFTER_S ({recover:g} s) for dead workers' jobs "
                "to come back within that time.",
                hint="Lower HELDOUT_REAP_EVERY_S (default 30).",
                id="heldout.E002",
            )
        )
    errors += _broker_check()
    if settings.HELDOUT_MAX_ATTEMPTS < 1 or settings.HELDOUT_RESEND_AFTER_S <= 0:
        errors.append(
            Error(
                "HELDOUT_MAX_ATTEMPTS must be at least 1 and HELDOUT_RESEND_AFTER_S above 0.",
                id="heldout.E004",
            )
        )
    errors += _limits_check()
    return errors


def _broker_check() -> list[Error]:
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}
    visibility = options.get("visibility_timeout")
    longest = STAGES_PER_JOB * float(settings.HELDOUT_SANDBOX_TIMEOUT_S)
    if not isinstance(visibility, int | float) or visibility > longest:
        return []
    return [
        Error(
            f"The broker's visibility_timeout ({visibility} s, "
            f"HELDOUT_BROKER_VISIBILITY_TIMEOUT_S) is not longer than the longest job "
            f"({longest:g} s: inference and scoring at HELDOUT_SANDBOX_TIMEOUT_S each): "
            "the broker would hand running jobs to a second worker.",
            hint="Raise HELDOUT_BROKER_VISIBILITY_TIMEOUT_S (default 3600).",
            id="heldout.E003",
        )
    ]


def _limits_check() -> list[Error]:
    from competitions.sandboxes import sandbox_limits

    try:
        sandbox_limits()
    except ValueError as exc:
        # Every scoring would fail with this message.
        return [Error(f"The HELDOUT_SANDBOX_* limits are invalid: {exc}.", id="heldout.E005")]
    return []
