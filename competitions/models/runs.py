"""What scoring leaves behind: attempts, sandbox runs, task versions, manifests and
replications."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from competitions.models.core import Task, _private_storage
from competitions.models.submissions import Submission
from competitions.models.teams import Team


class Attempt(models.Model):
    """One claim of a submission by a worker: who scored it, when, with what, and how it ended.

    The submission keeps what was submitted and its outcome; each try at scoring it is a
    row here, made by the claim (competitions.heartbeat.claim) and ended by one
    conditional UPDATE from RUNNING: by the worker (SCORED, FAILED, or RETURNED when it gave
    the work back for a fault of the platform or a scorer that does not match), or by the
    reaper (INTERRUPTED: its heartbeat stopped). `number` counts the submission's claims and
    tags the sandbox runs of this one (SandboxRun.attempt).
    """

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SCORED = "scored", "Scored"
        FAILED = "failed", "Failed"
        INTERRUPTED = "interrupted", "Interrupted (its worker stopped)"
        RETURNED = "returned", "Given back to the queue"

    submission = models.ForeignKey(
        Submission, on_delete=models.CASCADE, related_name="scoring_attempts"
    )
    number = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.RUNNING)
    worker = models.CharField(max_length=200, blank=True)
    # When the submission last went into the queue before this claim took it.
    queued_at = models.DateTimeField(null=True, blank=True)
    # Null only on the earlier claims of a submission scored before attempts were recorded
    # (migration 0019 knew their number and outcome, not their details).
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    peak_memory_bytes = models.BigIntegerField(null=True, blank=True)
    scorer_name = models.CharField(max_length=100, blank=True)
    scorer_image = models.CharField(max_length=200, blank=True)
    scorer_log = models.TextField(blank=True)
    # A scored attempt's per-row correctness or loss, float32, aligned to the ground
    # truth's row order (row_kind says which).
    row_values = models.FileField(
        storage=_private_storage, upload_to="rows/", blank=True, max_length=300
    )
    row_kind = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["submission", "number"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "number"], name="attempt_unique_number"),
            # One live claim per submission, whatever races the claim loses.
            models.UniqueConstraint(
                fields=["submission"],
                condition=Q(outcome="running"),
                name="attempt_one_running",
            ),
        ]
        indexes = [
            # The reaper (judging.reaper) and the stale-heartbeat metric read the running
            # attempts by heartbeat; the partial index holds only those.
            models.Index(
                fields=["heartbeat_at"],
                condition=Q(outcome="running"),
                name="attempt_running_heartbeat",
            ),
            # The duration metric reads the attempts finished lately.
            models.Index(fields=["finished_at"], name="attempt_finished"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of #{self.submission_id}: {self.outcome}"


class SandboxRun(models.Model):
    """One container run: a submission's inference stage or a scorer."""

    class Stage(models.TextChoices):
        INFERENCE = "inference", "Inference"
        SCORING = "scoring", "Scoring"

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="runs")
    stage = models.CharField(max_length=10, choices=Stage.choices)
    attempt = models.PositiveSmallIntegerField(default=1)
    image = models.CharField(max_length=200)
    image_digest = models.CharField(max_length=100, blank=True)
    limits = models.JSONField(default=dict)
    exit_code = models.IntegerField(null=True, blank=True)
    timed_out = models.BooleanField(default=False)
    oom_killed = models.BooleanField(default=False)
    duration_s = models.FloatField(null=True, blank=True)
    peak_memory_bytes = models.BigIntegerField(null=True, blank=True)
    log = models.TextField(blank=True)
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.stage} run of #{self.submission_id}"


class TaskVersion(models.Model):
    """An immutable state of what scores mean: ground truth, split and scorer."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    ground_truth = models.FileField(
        storage=_private_storage, upload_to="ground_truth/", max_length=300
    )
    ground_truth_sha256 = models.CharField(max_length=64)
    split_sha256 = models.CharField(max_length=64, blank=True)
    scorer_program_sha256 = models.CharField(max_length=64, blank=True)
    scorer_image_digest = models.CharField(max_length=100, blank=True)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["task", "number"]
        constraints = [
            models.UniqueConstraint(fields=["task", "number"], name="taskversion_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.task_id} v{self.number}"


class ScoringRun(models.Model):
    """One completed scoring of a submission, with the manifest that lets anyone re-derive it."""

    submission = models.ForeignKey(
        Submission, on_delete=models.CASCADE, related_name="scoring_runs"
    )
    task_version = models.PositiveIntegerField()
    manifest = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"scoring of #{self.submission_id} (v{self.task_version})"


class Replication(models.Model):
    """An organizer's request to run a container submission again and compare the scores."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Outcome(models.TextChoices):
        NONE = "", "Not yet"
        REPRODUCED = "reproduced", "Reproduced (identical)"
        WITHIN_TOLERANCE = "within_tolerance", "Reproduced within tolerance"
        DIVERGED = "diverged", "Diverged"

    submission = models.ForeignKey(
        Submission, on_delete=models.CASCADE, related_name="replications"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    queue = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default="", blank=True)
    tolerance = models.FloatField(default=1e-9)
    differences = models.JSONField(default=dict, blank=True)
    original_run = models.ForeignKey(
        ScoringRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    new_run = models.ForeignKey(
        ScoringRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Claimed, heartbeated and reaped (competitions.heartbeat); a submission's claims are
    # Attempt rows instead.
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    interruptions = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    # An organizer's cancellation: the replication no longer blocks finalizing.
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    def __str__(self) -> str:
        return f"replication of #{self.submission_id}: {self.outcome or self.status}"


def _invitation_token() -> str:
    return secrets.token_urlsafe(24)


class TeamInvitation(models.Model):
    """An invitation to join a team, by username or by a link carrying the token."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    invited_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    token = models.CharField(max_length=64, unique=True, default=_invitation_token)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"invitation to {self.team_id}"
