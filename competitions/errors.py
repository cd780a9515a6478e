"""Errors a service raises for a person to read. The API turns them into RFC 7807-style
JSON with the same status and code; HTML views into a page."""

from __future__ import annotations

import math
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Model
from django.utils import timezone


class ApplicationError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class NotJoined(ApplicationError):
    status = 403
    code = "not_joined"


class RulesNotAccepted(ApplicationError):
    status = 400
    code = "rules_not_accepted"


class TeamBanned(ApplicationError):
    status = 403
    code = "team_banned"


class PhaseClosed(ApplicationError):
    status = 403
    code = "phase_closed"


class QuotaExceeded(ApplicationError):
    status = 429
    code = "quota_exceeded"

    def __init__(self, message: str, *, resets_at: datetime | None):
        super().__init__(message, extra={"resets_at": resets_at.isoformat() if resets_at else None})
        self.resets_at = resets_at

    def retry_after_s(self) -> int | None:
        """Seconds until the quota resets (for a Retry-After header); None if it never does."""
        if self.resets_at is None:
            return None
        return max(math.ceil((self.resets_at - timezone.now()).total_seconds()), 1)


class InvalidState(ApplicationError):
    status = 409
    code = "invalid_state"


class FinalizedError(InvalidState):
    """The competition is finalized: the action could move the final board (docs/lifecycle.md)."""

    code = "finalized"


class BundleInvalid(ApplicationError):
    """The bundle can't be imported; `problems` lists every reason, each a sentence."""

    code = "bundle_invalid"

    def __init__(self, problems: list[str]):
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(
            f"The bundle has {count} {noun}: "
            + " ".join(problems[:3])
            + (" …" if count > 3 else ""),
            extra={"problems": problems},
        )
        self.problems = problems


def retry_after_headers(exc: ApplicationError) -> dict[str, str]:
    """Retry-After on a quota refusal that resets (the next UTC midnight), for clients'
    back-off; a phase's used-up total limit never resets, so it has none."""
    wait = exc.retry_after_s() if isinstance(exc, QuotaExceeded) else None
    return {"Retry-After": str(wait)} if wait is not None else {}


def full_clean_or_refuse(instance: Model, **options) -> None:
    """`instance.full_clean()`; a rule it breaks (the model's clean() and constraints,
    competitions/rules.py) is refused as an ApplicationError with the rule's sentence."""
    try:
        instance.full_clean(**options)
    except ValidationError as exc:
        raise ApplicationError(" ".join(dict.fromkeys(exc.messages))) from None
