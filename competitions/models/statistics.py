"""How each board's intervals were drawn: one row per competition and split."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class BoardStatistics(models.Model):
    """The bootstrap behind a board's intervals (scoring.statistics.BootstrapPlan): its seed,
    number of resamples and number of rows, so anyone can redraw the same resamples; and the
    board's sorted interval bounds, for the plausible ranks. Its row is the lock that
    serialises the refreshes of one board's bounds."""

    competition = models.ForeignKey(
        "competitions.Competition", on_delete=models.CASCADE, related_name="board_statistics"
    )
    split = models.CharField(max_length=8)
    task_version = models.PositiveIntegerField(null=True, blank=True)
    seed = models.BigIntegerField()
    resamples = models.PositiveIntegerField()
    level = models.FloatField(default=0.95)
    rows = models.PositiveIntegerField(null=True, blank=True)  # the split's rows, once known
    # The current intervals of the board's rows, sorted (scoring.statistics.RankBounds):
    # what the plausible ranks of any row are read from, rewritten as one value per refresh
    # (a new entry can move every other row's plausible ranks).
    bounds = models.BinaryField(default=bytes, blank=True)
    bounds_at = models.DateTimeField(null=True, blank=True)
    # The board's reference rows (models.ReferenceResult, services/references.py), as the
    # board shows them: read with the bounds, so they cost a board page no query; written
    # here, so a change counts the board version up (this row's trigger).
    references = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["competition", "split"], name="board_statistics_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(resamples__gte=1), name="board_statistics_resamples"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.competition_id} {self.split}: {self.resamples} resamples, seed {self.seed}"


class ShakeupEntry(models.Model):
    """One team's move from the public to the private board, computed once by a worker when
    the competition is finalized (competitions/services/shakeup.py), deleted on reopen and
    computed again at the next finalize. Ranks and plausible ranges as scoring.shakeup
    gives them; a null means the team is not on that board or has no interval there."""

    competition = models.ForeignKey(
        "competitions.Competition", on_delete=models.CASCADE, related_name="shakeup_entries"
    )
    team = models.ForeignKey("competitions.Team", on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()  # the report's order (private rank first)
    public_rank = models.PositiveIntegerField(null=True, blank=True)
    public_best = models.PositiveIntegerField(null=True, blank=True)
    public_worst = models.PositiveIntegerField(null=True, blank=True)
    private_rank = models.PositiveIntegerField(null=True, blank=True)
    private_best = models.PositiveIntegerField(null=True, blank=True)
    private_worst = models.PositiveIntegerField(null=True, blank=True)
    change = models.IntegerField(null=True, blank=True)  # places gained; negative: lost
    beyond_sampling = models.BooleanField(null=True, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["competition", "team"], name="shakeup_entry_unique"),
        ]
        indexes = [models.Index(fields=["competition", "position"], name="shakeup_entry_order")]

    def __str__(self) -> str:
        return f"{self.team_id}: {self.public_rank} -> {self.private_rank}"
