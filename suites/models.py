"""Suites, their tasks, methods and the submissions a method made (module docstring of
suites/). Rules live in suites/services.py and in the constraints here."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from competitions import rules
from competitions.models import Competition, Submission


class Suite(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown")
    rules = models.TextField(blank=True, help_text="Markdown; participants accept them to join")
    organizers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="organized_suites", blank=True
    )
    # The same choices as a competition's; a suite's tasks are shown only as the suite allows
    # (and the competitions it owns are unlisted on their own).
    visibility = models.CharField(
        max_length=16,
        choices=Competition.Visibility.choices,
        default=Competition.Visibility.PUBLIC,
    )
    # Who may see an invite-only suite besides its organizers and participants.
    invited = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="suite_invitations", blank=True
    )
    # The seed that cut the tasks' hidden test splits, when the suite's bundle made them.
    split_seed = models.BigIntegerField(null=True, blank=True)
    # Counts up in the transaction of every change to what the matrix shows that the tasks'
    # boards do not count (a method, a run, a stored cell): with them, the key of the kept
    # matrix (suites/selectors.py).
    matrix_version = models.PositiveBigIntegerField(default=0)
    # Counts up with matrix_version when a method or a task is saved or deleted, or a run
    # deleted: what a matrix computed from the last one's cells cannot follow
    # (suites/selectors.py computes the whole matrix again then).
    layout_version = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(visibility__in=["public", "unlisted", "invite_only"]),
                name="suite_visibility_known",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class SuiteTask(models.Model):
    """A task of the suite, at a position: the task of `competition`."""

    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="tasks")
    competition = models.ForeignKey(
        Competition, on_delete=models.PROTECT, related_name="suite_tasks"
    )
    position = models.PositiveSmallIntegerField()
    # The matrix's column name ("iris"); unique in the suite.
    key = models.SlugField(max_length=80)
    # The suite made the competition for this task (it goes with the suite); else the task
    # is a standalone competition's too.
    owned = models.BooleanField(default=True)

    class Meta:
        ordering = ["suite", "position"]
        constraints = [
            models.UniqueConstraint(fields=["suite", "position"], name="suitetask_unique_position"),
            models.UniqueConstraint(fields=["suite", "key"], name="suitetask_unique_key"),
            models.UniqueConstraint(
                fields=["suite", "competition"], name="suitetask_unique_competition"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.suite_id}[{self.position}] {self.key}"


class Method(models.Model):
    """What a participant runs across the suite's tasks, described so that it can be found
    and compared: its components are tags ("model": "gradient boosting")."""

    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="methods")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="suite_methods"
    )
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    paper_url = models.URLField(blank=True)
    code_url = models.URLField(blank=True)
    hardware_declared = models.CharField(max_length=300, blank=True)
    # tag -> list of values, e.g. {"preprocessing": ["standardize"], "model": ["logistic"]}
    components = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["suite", "created_at"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "suite",
                name="method_unique_name_ci",
                violation_error_message="The suite already has a method of that name.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class MethodRun(models.Model):
    """One submission a method made on one of the suite's tasks. The matrix's cell is the
    method's latest run on the task (its submission's outcome)."""

    method = models.ForeignKey(Method, on_delete=models.CASCADE, related_name="runs")
    suite_task = models.ForeignKey(SuiteTask, on_delete=models.CASCADE, related_name="runs")
    submission = models.OneToOneField(
        Submission, on_delete=models.CASCADE, related_name="method_run"
    )
    # The container submissions made from one upload share it (a fan-out's id).
    fanout = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The matrix reads each method's latest run per task.
            models.Index(fields=["method", "suite_task", "-created_at"], name="methodrun_cell"),
        ]

    def __str__(self) -> str:
        return f"{self.method_id} on {self.suite_task_id}: {self.submission_id}"


class SuiteCell(models.Model):
    """A cell of the matrix: which submission it shows (`latest`: the method's latest
    finished run on the task, written in the transaction that finishes it), and the values a
    worker computed (suites/cells.py) for `submission`: its primary score and 95 % interval on
    `split` under `task_version`. A read uses them only while submission, split and version
    are those the cell should show (`latest`, the board's split, the ranked version);
    otherwise the cell is stale: shown from its scores, without an interval, and recomputed."""

    class Status(models.TextChoices):
        SCORED = "scored"
        FAILED = "failed"  # the submission failed: counts as the constant predictor's score
        MISSING = "missing"  # scored, but with no primary score on this split and version

    method = models.ForeignKey(Method, on_delete=models.CASCADE, related_name="cells")
    suite_task = models.ForeignKey(SuiteTask, on_delete=models.CASCADE, related_name="cells")
    latest = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    # What the values below were computed for (None: not yet, or a rescore made them stale).
    submission = models.ForeignKey(
        Submission, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices, blank=True)
    split = models.CharField(max_length=8, blank=True)
    task_version = models.PositiveIntegerField(default=0)
    score = models.FloatField(null=True, blank=True)
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    # The suite's matrix_version written in the transaction that last wrote this row: a
    # matrix computed as of version V reads only the cells written after (suites/selectors.py).
    revision = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["method", "suite_task"], name="suitecell_unique"),
        ]
        indexes = [
            # The cells written since a matrix was computed: per task, revision > V.
            models.Index(fields=["suite_task", "revision"], name="suitecell_since"),
        ]

    def __str__(self) -> str:
        return f"{self.method_id} on {self.suite_task_id}: {self.status} {self.score}"


class SuitePhase(models.Model):
    """A phase of the suite's schedule: every task the suite made (`SuiteTask.owned`)
    follows it, mirrored into its competition's phases by suites/services_phases.py (which
    also keeps them in order and apart); those phases are what gates a submission. An
    attached task's competition keeps its own phases."""

    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="phases")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    start_at = models.DateTimeField()
    end_at = models.DateTimeField(null=True, blank=True)
    daily_limit = models.PositiveIntegerField(default=5, help_text="Per team, per UTC day")
    total_limit = models.PositiveIntegerField(null=True, blank=True)
    late_submissions_scored = models.BooleanField(
        default=False, help_text="Accept after the end: scored, never ranked"
    )
    submission_kind = models.CharField(
        max_length=12,
        # A competition phase's kinds (competitions/models/core.py's Phase).
        choices=[("predictions", "Prediction files"), ("container", "Containers")],
        default="predictions",
    )
    allow_build_context = models.BooleanField(
        default=False, help_text="Container phases: accept a build context built offline"
    )

    class Meta:
        ordering = ["suite", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["suite", "position"], name="suitephase_unique_position"
            ),
            models.UniqueConstraint(fields=["suite", "name"], name="suitephase_unique_name"),
            models.CheckConstraint(
                condition=Q(end_at__isnull=True) | Q(end_at__gt=models.F("start_at")),
                name="suitephase_end_after_start",
                violation_error_message=rules.PHASE_END_AFTER_START,
            ),
            models.CheckConstraint(
                condition=Q(daily_limit__gte=1)
                & (Q(total_limit__isnull=True) | Q(total_limit__gte=1)),
                name="suitephase_limits_min",
                violation_error_message=rules.LIMIT_AT_LEAST_ONE,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.suite_id}: {self.name}"
