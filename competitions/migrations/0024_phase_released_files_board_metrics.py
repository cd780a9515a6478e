"""Phases with their own files and board columns: a public task file may be released with a
phase (hidden until it starts), and a phase chooses the leaderboard's columns.

Which phase's columns a board shows depends on the phases' rows, so any change to a phase
counts its competition's board version up (0015_board_version's functions, on this table
too): a kept board is never one rendered under a phase row since changed.
"""

import django.db.models.deletion
from django.db import migrations, models

POSTGRESQL = """
CREATE TRIGGER heldout_board_phase_insert AFTER INSERT ON competitions_phase
    FOR EACH ROW EXECUTE FUNCTION heldout_board_of_row_changed();
CREATE TRIGGER heldout_board_phase_update AFTER UPDATE ON competitions_phase
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW)
    EXECUTE FUNCTION heldout_board_of_row_changed();
CREATE TRIGGER heldout_board_phase_delete AFTER DELETE ON competitions_phase
    FOR EACH ROW EXECUTE FUNCTION heldout_board_of_old_row_changed();
"""
POSTGRESQL_DROP = """
DROP TRIGGER heldout_board_phase_insert ON competitions_phase;
DROP TRIGGER heldout_board_phase_update ON competitions_phase;
DROP TRIGGER heldout_board_phase_delete ON competitions_phase;
"""


def _sqlite_bump(competition: str) -> str:
    return (
        "INSERT INTO competitions_boardversion (competition_id, version) "
        f"VALUES ({competition}, 1) "
        "ON CONFLICT (competition_id) DO UPDATE SET version = version + 1;"
    )


SQLITE = {
    "heldout_board_phase_insert": "AFTER INSERT ON competitions_phase "
    f"BEGIN {_sqlite_bump('NEW.competition_id')} END",
    "heldout_board_phase_update": "AFTER UPDATE ON competitions_phase "
    f"BEGIN {_sqlite_bump('NEW.competition_id')} END",
    "heldout_board_phase_delete": "AFTER DELETE ON competitions_phase "
    f"BEGIN {_sqlite_bump('OLD.competition_id')} END",
}


def install(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL)
    elif vendor == "sqlite":
        for name, body in SQLITE.items():
            schema_editor.execute(f"CREATE TRIGGER {name} {body}")
    else:
        raise RuntimeError(f"board version triggers: no SQL for {vendor}")


def uninstall(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_DROP)
    else:
        for name in SQLITE:
            schema_editor.execute(f"DROP TRIGGER {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("competitions", "0023_merge_attempts_references"),
    ]

    operations = [
        migrations.AddField(
            model_name="phase",
            name="board_metrics",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Metrics the leaderboard shows as columns during this phase (empty: all)",
            ),
        ),
        migrations.AddField(
            model_name="taskfile",
            name="released_with",
            field=models.ForeignKey(
                blank=True,
                help_text="Hidden from everyone but the organizers until this phase starts",
                null=True,
                on_delete=django.db.models.deletion.RESTRICT,
                related_name="released_files",
                to="competitions.phase",
            ),
        ),
        migrations.RunPython(install, uninstall),
    ]
