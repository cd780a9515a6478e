"""Teams and their members. A user is in at most one team per competition (the database
enforces it: Membership repeats the competition); a team's name is unique in its
competition whatever its case."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from competitions import rules
from competitions.models.core import Competition


class Team(models.Model):
    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )
    is_banned = models.BooleanField(default=False)
    banned_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # "Carol" and "carol" are one name; the services say so with rules.team_name_taken.
            models.UniqueConstraint(Lower("name"), "competition", name="team_unique_name_ci"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.name = rules.team_name_normal(self.name or "")
        if not self.name:
            raise ValidationError({"name": rules.TEAM_NAME_REQUIRED})
        if self.competition_id is None:
            return
        taken = Team.objects.filter(competition_id=self.competition_id, name__iexact=self.name)
        if taken.exclude(pk=self.pk).exists():
            raise ValidationError({"name": rules.team_name_taken(self.name)})


class Membership(models.Model):
    # competition is repeated here so the database can enforce one team per user per competition.
    competition = models.ForeignKey(Competition, on_delete=models.CASCADE)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    accepted_rules_at = models.DateTimeField()
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["competition", "user"], name="membership_one_team"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.team_id}"
