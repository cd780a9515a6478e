"""The audit trail of a competition's lifecycle: each finalize and each reopen, by whom and why."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from competitions.models.core import Competition


class CompetitionEvent(models.Model):
    class Kind(models.TextChoices):
        FINALIZED = "finalized", "Finalized"
        REOPENED = "reopened", "Reopened"

    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    # Finalize: the names of the phases it ended because they were still open.
    ended_phases = models.JSONField(default=list, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="reopened", reason=""), name="event_reopen_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.competition_id} {self.kind} at {self.at:%Y-%m-%d %H:%M}"
