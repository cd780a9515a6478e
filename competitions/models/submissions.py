"""Submissions and their scores. A submission keeps what was submitted and its outcome
(each try at scoring it is a runs.Attempt); scores are kept per task version, split and
metric, and rescoring under a new version adds rows, never overwrites them."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone

from competitions.models.core import Competition, Phase, _private_storage
from competitions.models.teams import Team

if TYPE_CHECKING:
    from competitions.models.runs import Attempt


def _submission_path(instance: Submission, filename: str) -> str:
    return f"submissions/{instance.competition_id}/{uuid.uuid4().hex}/{filename}"


class Submission(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SCORED = "scored", "Scored"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Failure(models.TextChoices):
        NONE = "", "None"
        INVALID = "invalid", "The file did not pass validation"
        ERROR = "error", "Scoring failed"
        # Its workers kept dying (HELDOUT_MAX_ATTEMPTS times): the platform's fault, so
        # like INVALID it does not use the team's quota.
        PLATFORM = "platform", "Scoring was interrupted"

    competition = models.ForeignKey(
        Competition, on_delete=models.CASCADE, related_name="submissions"
    )
    phase = models.ForeignKey(Phase, on_delete=models.PROTECT, related_name="submissions")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="submissions")
    submitter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    file = models.FileField(storage=_private_storage, upload_to=_submission_path, max_length=300)
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    method_name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    paper_url = models.URLField(blank=True)
    code_url = models.URLField(blank=True)
    hardware_declared = models.CharField(
        max_length=300, blank=True, help_text="Training hardware as the participant declares it"
    )
    kind = models.CharField(
        max_length=12,
        choices=[("predictions", "Prediction file"), ("container", "Container")],
        default="predictions",
    )
    # Container submissions: the loaded image, and the predictions its inference stage wrote.
    container_image = models.CharField(max_length=200, blank=True)
    container_image_digest = models.CharField(max_length=100, blank=True)
    container_image_size = models.BigIntegerField(null=True, blank=True)
    # Where other worker hosts pull the loaded image (<registry>/submissions@sha256:...),
    # once pushed to HELDOUT_IMAGE_REGISTRY; a cache, like the image: the archive is the truth.
    container_image_pushed = models.CharField(max_length=300, blank=True, default="")
    predictions = models.FileField(
        storage=_private_storage, upload_to="predictions/", blank=True, max_length=300
    )

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    failure = models.CharField(max_length=8, choices=Failure.choices, default="", blank=True)
    error_message = models.TextField(blank=True)
    problems = models.JSONField(default=list, blank=True)
    total_problems = models.PositiveIntegerField(default=0)
    is_late = models.BooleanField(default=False)
    is_disqualified = models.BooleanField(default=False)
    disqualified_reason = models.CharField(max_length=300, blank=True)
    is_selected = models.BooleanField(
        default=False, help_text="Chosen by the team for the private leaderboard"
    )

    created_at = models.DateTimeField(default=timezone.now)
    # When it last went into the queue (made, rescored, given back, requeued, resent): the
    # reaper resends a message older than HELDOUT_RESEND_AFTER_S. Who scored it, when and
    # how is in its attempts (runs.Attempt, one per claim).
    queued_at = models.DateTimeField(default=timezone.now)
    # The version it is ranked under (its latest scoring's).
    task_version = models.PositiveIntegerField(null=True, blank=True)
    # The primary metric's per-row pseudo-values on each split (scoring.influence), from
    # which the board's bootstrap intervals and pairwise comparisons are computed.
    influence = models.FileField(
        storage=_private_storage, upload_to="influence/", blank=True, max_length=300
    )
    # On a Ladder board, the public score the team was told after this submission (the
    # old one when this one did not beat it by more than the noise); written by the
    # leaderboard refresh. Unused on a plain board.
    ladder_public_score = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Quota counts and the per-team leaderboard refresh read a team's submissions by date.
            models.Index(fields=["team", "created_at"], name="submission_team_created"),
            # The reaper looks for work stuck in a state.
            models.Index(fields=["status", "queued_at"], name="submission_status_queued"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.original_name}"

    # Failures that do not use the team's quota: a rejected file, and scoring the platform
    # could not finish. Every quota count excludes these.
    UNCOUNTED_FAILURES = (Failure.INVALID, Failure.PLATFORM)

    @property
    def counts_against_quota(self) -> bool:
        return self.failure not in self.UNCOUNTED_FAILURES

    @property
    def latest_attempt(self) -> Attempt | None:
        """The latest claim (runs.Attempt) of this submission, None before the first.
        Reads `scoring_attempts` through its prefetch when the query made one
        (selectors.with_attempts), so a list costs one query, not one a row."""
        if "scoring_attempts" in getattr(self, "_prefetched_objects_cache", {}):
            attempts = list(self.scoring_attempts.all())
            return max(attempts, key=lambda a: a.number) if attempts else None
        return self.scoring_attempts.order_by("-number").first()


class Score(models.Model):
    class Split(models.TextChoices):
        PUBLIC = "public", "Public"
        PRIVATE = "private", "Private"

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="scores")
    task_version = models.PositiveIntegerField()
    split = models.CharField(max_length=8, choices=Split.choices)
    metric = models.CharField(max_length=40)
    value = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # Rescoring under a new task version adds rows; it never overwrites old ones.
            models.UniqueConstraint(
                fields=["submission", "task_version", "split", "metric"], name="score_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric}[{self.split}] = {self.value}"
