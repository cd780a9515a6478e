"""A user's notifications (the bell in the site's header, and e-mail) and their choices.

Contract: this app knows users and nothing of the domain: a notification is a short text
and a link on the site, written by the domain (competitions/services/notices.py) in the
transaction of the fact it announces. Its e-mail, if the user wants one, is sent by a task
that claims it with a conditional UPDATE of `email_sent_at`: once, however often the task
is delivered.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Kind(models.TextChoices):
    SUBMISSION_SCORED = "submission_scored", "A submission of your team is scored"
    SUBMISSION_FAILED = "submission_failed", "A submission of your team failed"
    TEAM_INVITATION = "team_invitation", "You are invited to a team"
    PHASE_OPENED = "phase_opened", "A phase of your competition opens"
    PHASE_ENDING = "phase_ending", "A phase of your competition ends within a day"
    COMPETITION_FINALIZED = "competition_finalized", "Your competition is finalized"


# (in the site, by e-mail) for a kind the user never chose for (docs/notifications.md).
DEFAULTS: dict[str, tuple[bool, bool]] = {
    Kind.SUBMISSION_SCORED: (True, False),  # frequent: the bell only
    Kind.SUBMISSION_FAILED: (True, True),
    Kind.TEAM_INVITATION: (True, True),
    Kind.PHASE_OPENED: (True, False),
    Kind.PHASE_ENDING: (True, True),
    Kind.COMPETITION_FINALIZED: (True, True),
}


class Notification(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)  # a path on the site
    # Once per user per key, for notices a periodic task makes ("phase:12:ending").
    key = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # False: the user wants this kind by e-mail only; the row carries the e-mail's state.
    shown = models.BooleanField(default=True)
    read_at = models.DateTimeField(null=True, blank=True)
    email_wanted = models.BooleanField(default=False)
    email_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_user_recent"),
            # The bell's count: a user's unread rows only.
            models.Index(
                fields=["user"],
                name="notification_user_unread",
                condition=Q(read_at__isnull=True, shown=True),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "key"], name="notification_once_per_key", condition=~Q(key="")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.title}"


class NotificationPreference(models.Model):
    """A user's choice for one kind; without a row, DEFAULTS holds."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    in_site = models.BooleanField()
    email = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="notification_preference_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}: site={self.in_site} email={self.email}"
