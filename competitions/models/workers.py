"""What workers report about themselves (scorer mismatches), and the claims once on a board."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from competitions.models.core import Task


class ScorerMismatchReport(models.Model):
    """A worker whose scorer differs from the one the task's ranked version records, so it
    leaves the task's submissions to other workers (docs/scorers.md). One row per task,
    worker and identity, counted up each time; the organizer's dashboard shows recent ones
    and offers to adopt the reported scorer."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="scorer_mismatches")
    worker = models.CharField(max_length=200)  # host:pid
    identity = models.CharField(max_length=100)  # the worker's scorer
    expected = models.CharField(max_length=100, blank=True)  # the version's scorer
    version = models.PositiveIntegerField()
    image = models.CharField(max_length=200, blank=True)  # the worker's image reference
    last_submission_id = models.BigIntegerField(null=True, blank=True)
    count = models.PositiveIntegerField(default=1)
    first_at = models.DateTimeField(default=timezone.now)
    last_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "worker", "identity"], name="scorermismatch_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.worker} runs {self.identity}, task {self.task_id} v{self.version} wants {self.expected}"


class ClaimRecord(models.Model):
    """A public leaderboard row as it was before it changed (a version switch, a better
    submission): the claim page, manifest and bundle of an entry that was ever on a board
    someone could see stay visible to them (permissions.access_entry)."""

    submission = models.ForeignKey(
        "competitions.Submission", on_delete=models.CASCADE, related_name="claim_records"
    )
    split = models.CharField(max_length=8)
    task_version = models.PositiveIntegerField()
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["submission", "split", "task_version"], name="claimrecord_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.submission_id} on the {self.split} board of v{self.task_version}"
