"""The shake-up report is part of what the private board shows ("since public"), so
writing or deleting its rows counts the board version up, like the leaderboard's rows
(0015_board_version's function, on this table too)."""

from django.db import migrations

POSTGRESQL = """
CREATE TRIGGER heldout_board_shakeup_insert AFTER INSERT ON competitions_shakeupentry
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION heldout_board_entries_changed();
CREATE TRIGGER heldout_board_shakeup_delete AFTER DELETE ON competitions_shakeupentry
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION heldout_board_entries_changed();
"""
POSTGRESQL_DROP = """
DROP TRIGGER heldout_board_shakeup_insert ON competitions_shakeupentry;
DROP TRIGGER heldout_board_shakeup_delete ON competitions_shakeupentry;
"""


def _sqlite_bump(competition: str) -> str:
    return (
        "INSERT INTO competitions_boardversion (competition_id, version) "
        f"VALUES ({competition}, 1) "
        "ON CONFLICT (competition_id) DO UPDATE SET version = version + 1;"
    )


SQLITE = {
    "heldout_board_shakeup_insert": "AFTER INSERT ON competitions_shakeupentry "
    f"BEGIN {_sqlite_bump('NEW.competition_id')} END",
    "heldout_board_shakeup_delete": "AFTER DELETE ON competitions_shakeupentry "
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
        ("competitions", "0017_merge_shakeup_tie_rule"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
