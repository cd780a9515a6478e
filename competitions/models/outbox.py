"""The transactional outbox: every Celery message the platform sends is first a row here,
written in the transaction that makes the work (competitions.services.outbox).

A row is unsent (`sent_at` null) until a sender publishes it to the broker: right after the
commit, or the periodic sweep (every HELDOUT_OUTBOX_SWEEP_S) while the broker was down. A
sender claims a row with a conditional UPDATE of `claimed_until` (a lease), so two senders
never publish the same row at once."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class OutboxMessage(models.Model):
    task = models.CharField(max_length=200)  # a Celery task's registered name
    args = models.JSONField(default=list)
    queue = models.CharField(max_length=100)
    countdown = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # A sender's lease: set by the claim, cleared when the send fails.
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [
            # The sweep's and the backlog metric's scan: unsent rows only.
            models.Index(
                fields=["created_at"], name="outbox_unsent", condition=Q(sent_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task}{self.args} -> {self.queue}"
