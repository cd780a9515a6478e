"""The domain: competitions, their task, its files and phases (teams are in teams.py,
submissions and scores in submissions.py, leaderboard rows in boards.py).

Models hold fields, constraints and properties of their own fields; anything that
crosses relations lives in selectors/, every write in services/.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.db import models
from django.db.models import Q
from django.utils import timezone

from competitions import rules
from competitions.rules import TIE_EARLIER, TIE_RULE_CHOICES
from scoring.spec import TaskSpec


def _private_storage():  # a callable so tests can swap settings.STORAGES
    return storages["private"]


class Competition(models.Model):
    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public"
        UNLISTED = "unlisted", "Unlisted"
        INVITE_ONLY = "invite_only", "Invite only"

    class PublicBoard(models.TextChoices):
        PLAIN = "plain", "Plain: every public score is shown"
        LADDER = "ladder", "Ladder: a public score is shown only when it beats the noise"

    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown")
    rules = models.TextField(blank=True, help_text="Markdown; participants accept them to join")
    prize = models.CharField(
        max_length=200,
        blank=True,
        help_text="What the winners get, in a few words; shown on the competition's card",
    )
    organizers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="organized_competitions", blank=True
    )
    invited = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="competition_invitations", blank=True
    )
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    selection_limit = models.PositiveSmallIntegerField(
        default=2, help_text="How many submissions a team may select for the private leaderboard"
    )
    finalized_at = models.DateTimeField(null=True, blank=True)
    # The latest reopen (CompetitionEvent keeps them all), shown with the leaderboard.
    reopened_at = models.DateTimeField(null=True, blank=True)
    reopen_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    max_team_size = models.PositiveSmallIntegerField(default=5)
    labels_published = models.BooleanField(
        default=False,
        help_text="The ground truth may be downloaded by anyone who can see the competition",
    )
    replicate_top_n = models.PositiveSmallIntegerField(
        default=0,
        help_text="Container submissions of the top N that must be replicated before finalizing",
    )
    # How ties are resolved for prizes, stated on the rules page (rules.tie_rule_sentence).
    tie_rule = models.CharField(max_length=16, choices=TIE_RULE_CHOICES, default=TIE_EARLIER)
    tie_break_metric = models.CharField(max_length=40, blank=True)  # with TIE_METRIC
    # The Ladder (Blum & Hardt 2015; competitions/services/ladder.py) against overfitting
    # the public board by probing it; the private board is unaffected.
    public_board = models.CharField(
        max_length=10, choices=PublicBoard.choices, default=PublicBoard.PLAIN
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(public_board__in=["plain", "ladder"]),
                name="competition_public_board_known",
            ),
            models.CheckConstraint(
                condition=Q(selection_limit__gte=1), name="competition_selection_limit_min"
            ),
            models.CheckConstraint(
                condition=Q(max_team_size__gte=1), name="competition_max_team_size_min"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        problems = rules.competition_limit_problems(
            selection_limit=self.selection_limit, max_team_size=self.max_team_size
        )
        problems |= rules.competition_date_problems(start_at=self.start_at, end_at=self.end_at)
        task = getattr(self, "task", None)  # none yet while a bundle is imported
        problems |= rules.tie_rule_problems(
            tie_rule=self.tie_rule,
            tie_break_metric=self.tie_break_metric,
            computed=task.secondary_metrics if task is not None else None,
        )
        if problems:
            raise ValidationError(problems)

    @property
    def is_finalized(self) -> bool:
        return self.finalized_at is not None


class Task(models.Model):
    """What is predicted and how it is scored. The ground truth never gets a URL."""

    class Type(models.TextChoices):
        BINARY = "binary", "Binary classification"
        MULTICLASS = "multiclass", "Multiclass classification"
        REGRESSION = "regression", "Regression"
        PROBABILITIES = "probabilities", "Class probabilities"

    competition = models.OneToOneField(Competition, on_delete=models.CASCADE, related_name="task")
    task_type = models.CharField(max_length=16, choices=Type.choices)
    id_column = models.CharField(max_length=100, default="id")
    target_columns = models.JSONField(default=list)
    classes = models.JSONField(default=list, blank=True)
    primary_metric = models.CharField(max_length=40)
    secondary_metrics = models.JSONField(default=list, blank=True)
    ground_truth = models.FileField(
        storage=_private_storage, upload_to="ground_truth/", max_length=300
    )
    ground_truth_sha256 = models.CharField(max_length=64, blank=True)
    ground_truth_size = models.BigIntegerField(default=0)
    # The version the leaderboard ranks. A change of ground truth, split or scorer makes a new
    # TaskVersion; scores keep the version that made them; organizers choose when to switch.
    version = models.PositiveIntegerField(default=1)

    # Sandbox (issue 3): where and how scoring runs.
    queue = models.CharField(
        max_length=40,
        default="cpu",
        help_text="Worker queue (resource class) that serves this task",
    )
    scorer_program = models.FileField(
        storage=_private_storage,
        upload_to="scorers/",
        blank=True,
        max_length=300,
        help_text="An organizer-written score.py, or a zip holding one",
    )
    scorer_program_sha256 = models.CharField(max_length=64, blank=True)
    scorer_program_public = models.BooleanField(
        default=False, help_text="Include the scoring program in reproducibility bundles"
    )
    scorer_image = models.CharField(
        max_length=200, blank=True, help_text="Scorer image; blank means the platform's default"
    )
    scorer_dry_run = models.JSONField(
        default=dict, blank=True, help_text="The scorer's result on the sample submission"
    )
    scorer_logs_visible = models.BooleanField(
        default=False, help_text="Show scorer logs to participants (they can leak labels)"
    )
    limits = models.JSONField(
        default=dict, blank=True, help_text="Scoring sandbox limits overriding the defaults"
    )
    inference_limits = models.JSONField(
        default=dict, blank=True, help_text="Inference sandbox limits for container submissions"
    )

    def __str__(self) -> str:
        return f"{self.competition.slug} ({self.get_task_type_display()})"

    def spec(self) -> TaskSpec:
        return TaskSpec(
            id_column=self.id_column,
            target_columns=tuple(self.target_columns),
            task_type=self.task_type,  # type: ignore[arg-type]
            primary_metric=self.primary_metric,
            secondary_metrics=tuple(self.secondary_metrics),
            classes=tuple(str(c) for c in self.classes),
        )


class TaskFileQuerySet(models.QuerySet):
    def released_at(self, when: datetime) -> TaskFileQuerySet:
        """The files that exist for participants at `when`: decided at read time, so a
        phase's files appear the moment it starts, with no job."""
        return self.filter(Q(released_with__isnull=True) | Q(released_with__start_at__lte=when))


class TaskFile(models.Model):
    """A public data file: train data, test features, a sample submission."""

    class Kind(models.TextChoices):
        TRAIN = "train", "Training data"
        TEST = "test", "Test features"
        SAMPLE = "sample", "Sample submission"
        OTHER = "other", "Other"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="files")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=200, help_text="File name shown and used for downloads")
    description = models.CharField(max_length=300, blank=True)
    file = models.FileField(upload_to="task_files/", max_length=300)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(default=0)
    # Test inputs of a later phase: before that phase's start the file exists for the
    # competition's organizers only (TaskFile.objects.released_at; permissions.py). RESTRICT:
    # a phase holding files back is not deleted, unless with its whole competition.
    released_with = models.ForeignKey(
        "Phase",
        null=True,
        blank=True,
        on_delete=models.RESTRICT,
        related_name="released_files",
        help_text="Hidden from everyone but the organizers until this phase starts",
    )

    objects = TaskFileQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["task", "name"], name="taskfile_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        phase = self.released_with
        if (
            phase is not None
            and self.task_id is not None
            and phase.competition_id != self.task.competition_id
        ):
            raise ValidationError({"released_with": rules.RELEASE_PHASE_ELSEWHERE})

    def is_released_at(self, when: datetime) -> bool:
        phase = self.released_with
        return phase is None or phase.start_at <= when


class Phase(models.Model):
    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="phases")
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
        choices=[("predictions", "Prediction files"), ("container", "Containers")],
        default="predictions",
    )
    allow_build_context = models.BooleanField(
        default=False, help_text="Container phases: accept a build context built offline"
    )
    # The leaderboard's columns while this phase is the board's (selectors.board_phase):
    # some of the task's metrics, in order; empty: the primary and secondary metrics.
    board_metrics = models.JSONField(
        default=list,
        blank=True,
        help_text="Metrics the leaderboard shows as columns during this phase (empty: all)",
    )
    # The task version this phase's submissions are scored and ranked under, and which the
    # board ranks while the phase is open (services/phase_versions.py); null: the ranked one.
    task_version = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Number of the task version this phase scores and ranks under (empty: the ranked one)",
    )

    class Meta:
        ordering = ["start_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_at__isnull=True) | Q(end_at__gt=models.F("start_at")),
                name="phase_end_after_start",
                violation_error_message=rules.PHASE_END_AFTER_START,
            ),
            models.CheckConstraint(
                condition=Q(daily_limit__gte=1),
                name="phase_daily_limit_min",
                violation_error_message=rules.LIMIT_AT_LEAST_ONE,
            ),
            models.CheckConstraint(
                condition=Q(total_limit__isnull=True) | Q(total_limit__gte=1),
                name="phase_total_limit_min",
                violation_error_message=rules.LIMIT_AT_LEAST_ONE,
            ),
        ]

    # The admin's phase inline checks overlap across its rows at once (its formset), so its
    # forms skip the check against the rows as stored, which the same save may be moving.
    overlap_checked_elsewhere = False

    def __str__(self) -> str:
        return f"{self.competition.slug}: {self.name}"

    def clean(self) -> None:
        """The phase rules (competitions/rules.py): its own, and no overlap with the
        competition's other phases."""
        problems = rules.phase_problems(
            start_at=self.start_at,
            end_at=self.end_at,
            daily_limit=self.daily_limit,
            total_limit=self.total_limit,
        )
        problems |= self._board_metric_problems()
        problems |= self._task_version_problems()
        if problems:
            raise ValidationError(problems)
        if self.overlap_checked_elsewhere or self.competition_id is None or self.start_at is None:
            return
        others = Phase.objects.filter(competition_id=self.competition_id).exclude(pk=self.pk)
        rows = others.values_list("name", "start_at", "end_at")
        overlapped = rules.phase_overlapping(self.start_at, self.end_at, rows)
        if overlapped is not None:
            raise ValidationError(rules.phase_overlap(overlapped))

    def _board_metric_problems(self) -> dict[str, str]:
        task = Task.objects.filter(competition_id=self.competition_id).first()
        computed = None if task is None else [task.primary_metric, *task.secondary_metrics]
        return rules.board_metric_problems(board_metrics=self.board_metrics, computed=computed)

    def _task_version_problems(self) -> dict[str, str]:
        """The pinned version must be the task's; a pin being set (not one kept as stored,
        so a phase keeps its dates editable whatever became of its version) must also be
        usable (rules.phase_version_unusable)."""
        if self.task_version is None:
            return {}
        from competitions.models.runs import TaskVersion  # runs.py builds on this module

        version = (
            TaskVersion.objects.filter(
                task__competition_id=self.competition_id, number=self.task_version
            )
            .select_related("task")
            .first()
        )
        if version is None:
            return {"task_version": rules.phase_version_unknown(self.task_version)}
        stored = Phase.objects.filter(pk=self.pk, task_version=self.task_version)
        if self.pk is not None and stored.exists():
            return {}
        ranked = version.task.version
        ranked_scorer = (
            TaskVersion.objects.filter(task_id=version.task_id, number=ranked)
            .values_list("scorer_image_digest", flat=True)
            .first()
        )
        name = version.ground_truth.name or ""
        problem = rules.phase_version_unusable(
            number=version.number,
            truth_stored=bool(name) and version.ground_truth.storage.exists(name),
            scorer=version.scorer_image_digest,
            ranked=ranked,
            ranked_scorer=ranked_scorer or "",
        )
        return {"task_version": problem} if problem else {}

    def is_open_at(self, when: datetime) -> bool:
        return self.start_at <= when and (self.end_at is None or when < self.end_at)
