"""Reference results: what the platform's own predictions score on a task version.

A reference (the constant predictor, a simple model; scoring/baselines.py) is not a team
and makes no submission: it lives here only, so no count of teams or submissions, quota,
rank, plausible rank, shake-up or prize can meet it. Each board shows the references of
its ranked version, from the summary kept on its BoardStatistics row
(competitions/services/references.py).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from competitions.models.core import _private_storage


class ReferenceResult(models.Model):
    class Kind(models.TextChoices):
        CONSTANT = "constant", "Constant predictor"
        MODEL = "model", "Simple model"

    class Status(models.TextChoices):
        SCORED = "scored", "Scored"
        SKIPPED = "skipped", "Not made"  # the task's files allow none; `reason` says why
        FAILED = "failed", "Failed"  # its predictions did not score; `reason` says why

    competition = models.ForeignKey(
        "competitions.Competition", on_delete=models.CASCADE, related_name="references"
    )
    task_version = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    label = models.CharField(max_length=100)  # "Constant predictor (class prior)"
    status = models.CharField(max_length=8, choices=Status.choices)
    reason = models.CharField(max_length=300, blank=True)  # where it learnt, or why not made
    scores = models.JSONField(default=dict, blank=True)  # split -> metric -> value
    # The primary metric's 95 % bootstrap interval on each split: split -> [low, high],
    # drawn with the board's resamples (BoardStatistics), like the teams' intervals.
    intervals = models.JSONField(default=dict, blank=True)
    row_values = models.FileField(
        storage=_private_storage, upload_to="rows/", blank=True, max_length=300
    )
    influence = models.FileField(
        storage=_private_storage, upload_to="influence/", blank=True, max_length=300
    )
    scorer_name = models.CharField(max_length=100, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["competition", "task_version", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["competition", "task_version", "kind"], name="reference_unique"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["constant", "model"]), name="reference_kind_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.competition_id} v{self.task_version} {self.kind}: {self.status}"
