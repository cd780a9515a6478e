"""Organizers' background jobs: long actions that run on a worker, not in a request."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from competitions.models.core import Competition, _private_storage


class OrganizerJob(models.Model):
    """A scoring program's dry run, a version switch or a rescore of everything, with its
    progress. competitions.services.jobs runs it; the organizer polls it."""

    class Kind(models.TextChoices):
        DRY_RUN = "dry_run", "Scoring program dry run"
        VERSION_SWITCH = "version_switch", "Version switch"
        RESCORE_ALL = "rescore_all", "Rescore every submission"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    competition = models.ForeignKey(
        Competition, on_delete=models.CASCADE, related_name="organizer_jobs"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    # What to do: {"number": 2, "rescore": true}, {"image": ..., "public": ...}.
    params = models.JSONField(default=dict, blank=True)
    # A scoring program waiting for its dry run; the task's scorer is unchanged until it passes.
    file = models.FileField(storage=_private_storage, upload_to="jobs/", max_length=300, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # Claims, like a submission's: the running worker beats (competitions.heartbeat); the reaper
    # runs a job again, or fails it, once its heartbeat is HELDOUT_RECOVER_AFTER_S old.
    attempts = models.PositiveIntegerField(default=0)
    interruptions = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When it was last sent to a worker: one queued for HELDOUT_RESEND_AFTER_S is sent again.
    queued_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["competition", "kind", "-created_at"], name="organizerjob_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}: {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
