"""Webhooks: a user's signed HTTP endpoints, and the log of each event sent to one.

competitions.services.events creates the deliveries; competitions.services.webhooks sends
them (docs/api.md, "Webhooks")."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from competitions.models.core import Competition


class Webhook(models.Model):
    class Event(models.TextChoices):
        SUBMISSION_SCORED = "submission.scored", "A submission of my team was scored"
        SUBMISSION_FAILED = "submission.failed", "A submission of my team failed"
        COMPETITION_FINALIZED = "competition.finalized", "A competition of mine was finalized"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhooks"
    )
    # None: every competition the owner takes part in or organizes.
    competition = models.ForeignKey(
        Competition, on_delete=models.CASCADE, null=True, blank=True, related_name="webhooks"
    )
    url = models.URLField(max_length=500)
    # Signs every delivery (HMAC-SHA256); shown to the owner once, when the hook is made.
    secret = models.CharField(max_length=100)
    events = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"webhook {self.pk} of {self.owner_id} to {self.url}"


class WebhookDelivery(models.Model):
    """One event for one hook. The body is kept as sent, so every attempt signs the same
    bytes; pending until a 2xx answer (succeeded) or the last attempt (failed)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40)
    # The event's id: the same in every hook's delivery of one event, for deduplication.
    event_id = models.CharField(max_length=40)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Pending: when the next attempt is due (while one runs: when its claim lapses).
    next_try_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["webhook", "-created_at"], name="webhookdelivery_recent")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="pending") | Q(finished_at__isnull=False),
                name="webhookdelivery_finished_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.event}) {self.status}"
