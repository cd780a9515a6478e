"""The organizers' audit log: each change an organizer makes to a competition, by whom, when,
to what and why. Written by the service that makes the change, in its transaction
(competitions/services/audit.py), so a change and its line commit or roll back together.
Organizers read it on their Log page; participants never see it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from competitions.models.core import Competition


class OrganizerAction(models.Model):
    class Kind(models.TextChoices):
        DETAILS_UPDATED = "details_updated", "Edited the overview, rules, dates or visibility"
        LIMITS_UPDATED = "limits_updated", "Changed the team limits"
        PUBLIC_BOARD_SET = "public_board_set", "Changed the kind of public board"
        TIE_RULE_UPDATED = "tie_rule_updated", "Changed the tie rule"
        PHASE_CREATED = "phase_created", "Added a phase"
        PHASE_UPDATED = "phase_updated", "Changed a phase"
        PHASE_DELETED = "phase_deleted", "Deleted a phase"
        ORGANIZER_ADDED = "organizer_added", "Added an organizer"
        ORGANIZER_REMOVED = "organizer_removed", "Removed an organizer"
        INVITEE_ADDED = "invitee_added", "Invited a user"
        INVITEE_REMOVED = "invitee_removed", "Withdrew an invitation"
        SUBMISSION_DISQUALIFIED = "submission_disqualified", "Disqualified a submission"
        SUBMISSION_REQUALIFIED = "submission_requalified", "Ranked a submission again"
        SUBMISSION_RESCORED = "submission_rescored", "Queued a submission for scoring again"
        RESCORE_ALL_STARTED = "rescore_all_started", "Started rescoring every submission"
        VERSION_SWITCH_STARTED = "version_switch_started", "Started ranking by another version"
        REPLICATION_CANCELLED = "replication_cancelled", "Cancelled a replication"
        TEAM_BANNED = "team_banned", "Banned a team"
        TEAM_UNBANNED = "team_unbanned", "Lifted a team's ban"
        FINALIZED = "finalized", "Finalized the competition"
        REOPENED = "reopened", "Reopened the competition"

    competition = models.ForeignKey(
        Competition, on_delete=models.CASCADE, related_name="organizer_actions"
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # What the action touched, in words a person reads ("submission #12", "phase “Main”").
    target = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    # What changed: {"fields": [...]} or ids; for the record, not for logic.
    details = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["competition", "-at"], name="organizer_action_recent")]

    def __str__(self) -> str:
        return f"{self.competition_id} {self.kind} at {self.at:%Y-%m-%d %H:%M}"
