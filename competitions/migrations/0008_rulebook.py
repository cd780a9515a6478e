"""The rule book's database constraints (docs/site.md): team names unique regardless of
case within a competition, phases ending after they start, limits of at least 1.

Rows that break a new rule are mended first, so the constraints can be added:
- a team whose name differs only in case from an earlier team's (by id) is renamed with a
  suffix, "carol" -> "carol-2" (the first free one);
- a phase ending at or before its start ends one microsecond after it (it never took a
  submission, and still doesn't);
- a limit below 1 becomes 1.
"""

from collections import defaultdict
from datetime import timedelta

import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models


def team_names_dedupe(apps, schema_editor) -> None:
    """Rename the later teams (by id) of every case-insensitive name clash in a competition."""
    Team = apps.get_model("competitions", "Team")
    by_competition: dict[int, list] = defaultdict(list)
    for team in Team.objects.order_by("id").only("id", "competition_id", "name"):
        by_competition[team.competition_id].append(team)
    for teams in by_competition.values():
        used = {team.name.lower() for team in teams}  # so a suffix never makes a new clash
        kept: set[str] = set()
        for team in teams:
            key = team.name.lower()
            if key not in kept:
                kept.add(key)
                continue
            name = _free_name(team.name, used)
            used.add(name.lower())
            kept.add(name.lower())
            Team.objects.filter(pk=team.pk).update(name=name)


def _free_name(name: str, used: set[str]) -> str:
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = name[: 100 - len(suffix)] + suffix  # names hold at most 100 characters
        if candidate.lower() not in used:
            return candidate
        n += 1


def limits_mend(apps, schema_editor) -> None:
    Phase = apps.get_model("competitions", "Phase")
    Competition = apps.get_model("competitions", "Competition")
    for phase in Phase.objects.filter(end_at__lte=models.F("start_at")):
        Phase.objects.filter(pk=phase.pk).update(end_at=phase.start_at + timedelta(microseconds=1))
    Phase.objects.filter(daily_limit__lt=1).update(daily_limit=1)
    Phase.objects.filter(total_limit__lt=1).update(total_limit=1)
    Competition.objects.filter(selection_limit__lt=1).update(selection_limit=1)
    Competition.objects.filter(max_team_size__lt=1).update(max_team_size=1)


class Migration(migrations.Migration):
    dependencies = [
        ("competitions", "0007_merge_jobs"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(team_names_dedupe, migrations.RunPython.noop),
        migrations.RunPython(limits_mend, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="team",
            name="team_unique_name",
        ),
        migrations.AddConstraint(
            model_name="competition",
            constraint=models.CheckConstraint(
                condition=models.Q(("selection_limit__gte", 1)),
                name="competition_selection_limit_min",
            ),
        ),
        migrations.AddConstraint(
            model_name="competition",
            constraint=models.CheckConstraint(
                condition=models.Q(("max_team_size__gte", 1)), name="competition_max_team_size_min"
            ),
        ),
        migrations.AddConstraint(
            model_name="phase",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("end_at__isnull", True), ("end_at__gt", models.F("start_at")), _connector="OR"
                ),
                name="phase_end_after_start",
                violation_error_message="A phase must end after it starts.",
            ),
        ),
        migrations.AddConstraint(
            model_name="phase",
            constraint=models.CheckConstraint(
                condition=models.Q(("daily_limit__gte", 1)),
                name="phase_daily_limit_min",
                violation_error_message="Limits are at least 1.",
            ),
        ),
        migrations.AddConstraint(
            model_name="phase",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("total_limit__isnull", True), ("total_limit__gte", 1), _connector="OR"
                ),
                name="phase_total_limit_min",
                violation_error_message="Limits are at least 1.",
            ),
        ),
        migrations.AddConstraint(
            model_name="team",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("name"),
                models.F("competition"),
                name="team_unique_name_ci",
            ),
        ),
    ]
