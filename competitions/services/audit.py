"""The organizers' audit log (OrganizerAction): one line per change, written by the service
that makes the change, inside its transaction, so the line exists exactly when the change
does. Services take the acting user as `by` (None: a system change, or a caller that
doesn't know; the log says so)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from competitions.models import OrganizerAction

Kind = OrganizerAction.Kind


def organizer_action_record(
    *,
    competition_id: int,
    by: User | None,
    kind: str,
    target: str = "",
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> OrganizerAction:
    """Add a line to the competition's log; only inside the transaction of the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("An audit line is written in the transaction of its change.")
    action = OrganizerAction(
        competition_id=competition_id,
        by=by,
        kind=kind,
        target=target[:200],
        reason=" ".join(reason.split())[:500],
        details=details or {},
    )
    action.full_clean()
    action.save()
    return action
