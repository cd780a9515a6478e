"""The rule book's database constraints (migration 0008_rulebook): a direct ORM write that
breaks a rule is refused by PostgreSQL itself, and the migration mends existing rows first."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from competitions.models import Competition, Phase, Team

pytestmark = pytest.mark.django_db

rulebook_migration = importlib.import_module("competitions.migrations.0008_rulebook")


def _refused(write) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        write()


def test_the_database_refuses_team_names_differing_only_in_case(competition):
    _refused(lambda: Team.objects.create(competition=competition, name="ALICE"))
    _refused(lambda: Team.objects.filter(name="bob").update(name="Alice"))
    assert Team.objects.create(competition=competition, name="carol").name == "carol"


def test_the_same_name_may_be_used_in_another_competition(competition, other_competition):
    assert Team.objects.create(competition=other_competition, name="Alice").pk


def test_the_database_refuses_a_phase_ending_before_it_starts(competition):
    phase = competition.phases.get()
    _refused(lambda: Phase.objects.filter(pk=phase.pk).update(end_at=phase.start_at))
    _refused(
        lambda: Phase.objects.filter(pk=phase.pk).update(
            end_at=phase.start_at - timedelta(seconds=1)
        )
    )
    Phase.objects.filter(pk=phase.pk).update(end_at=None)  # open-ended is fine


@pytest.mark.parametrize(("field", "value"), [("daily_limit", 0), ("total_limit", 0)])
def test_the_database_refuses_phase_limits_below_one(competition, field, value):
    _refused(lambda: Phase.objects.filter(competition=competition).update(**{field: value}))


@pytest.mark.parametrize("field", ["selection_limit", "max_team_size"])
def test_the_database_refuses_competition_limits_below_one(competition, field):
    _refused(lambda: Competition.objects.filter(pk=competition.pk).update(**{field: 0}))


def _without_constraint(model, name: str):
    """Drop a constraint inside the test's transaction (rolled back with it), to lay out
    rows as they may have been before the migration."""
    constraint = next(c for c in model._meta.constraints if c.name == name)
    with connection.cursor() as cursor:  # ALTER TABLE waits for no deferred FK checks
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with connection.schema_editor() as editor:
        editor.remove_constraint(model, constraint)


def test_the_migration_renames_later_teams_whose_names_differ_only_in_case(
    competition, other_competition
):
    _without_constraint(Team, "team_unique_name_ci")
    names = ["Carol", "carol", "CAROL", "carol-2", "Dave"]
    teams = [Team.objects.create(competition=competition, name=n) for n in names]
    elsewhere = Team.objects.create(competition=other_competition, name="carol")

    rulebook_migration.team_names_dedupe(apps, None)

    renamed = [Team.objects.get(pk=t.pk).name for t in teams]
    assert renamed == ["Carol", "carol-3", "CAROL-4", "carol-2", "Dave"]
    assert Team.objects.get(pk=elsewhere.pk).name == "carol"  # alone in its competition
    lowered = [
        n.lower()
        for n in Team.objects.filter(competition=competition).values_list("name", flat=True)
    ]
    assert len(lowered) == len(set(lowered))


def test_the_migration_keeps_renamed_names_within_100_characters(competition):
    _without_constraint(Team, "team_unique_name_ci")
    long = "x" * 100
    first = Team.objects.create(competition=competition, name=long)
    second = Team.objects.create(competition=competition, name=long.upper())

    rulebook_migration.team_names_dedupe(apps, None)

    assert Team.objects.get(pk=first.pk).name == long
    assert Team.objects.get(pk=second.pk).name == "X" * 98 + "-2"


def test_the_migration_mends_phases_and_limits_that_break_the_new_checks(competition):
    for name in ("phase_end_after_start", "phase_daily_limit_min", "phase_total_limit_min"):
        _without_constraint(Phase, name)
    _without_constraint(Competition, "competition_selection_limit_min")
    phase = competition.phases.get()
    start = timezone.now()
    Phase.objects.filter(pk=phase.pk).update(
        start_at=start, end_at=start - timedelta(days=1), daily_limit=0, total_limit=0
    )
    Competition.objects.filter(pk=competition.pk).update(selection_limit=0)

    rulebook_migration.limits_mend(apps, None)

    phase.refresh_from_db()
    assert (phase.end_at, phase.daily_limit, phase.total_limit) == (
        start + timedelta(microseconds=1),
        1,
        1,
    )
    assert Competition.objects.get(pk=competition.pk).selection_limit == 1
