"""The board-version triggers again on SQLite, where two later migrations lost some of them.

SQLite adds a column with a default by rebuilding the table, and the rebuilt table has no
triggers: 0016_competition_tie_rule lost competitions_competition's (finalize, reopen,
visibility, title and dates no longer counted the board version up) and
0019_reference_results lost competitions_boardstatistics' (a board's plausible ranks), so
on SQLite (`make demo`) a kept board was served after such a change. Every board-version
trigger of 0015, 0018 and 0024 is made again here, as they made it (dropped first: most
survived). PostgreSQL keeps triggers across ALTER TABLE: nothing to do there.

`BOARD_TRIGGERS_SQLITE` is every such trigger by name; tests/competitions/
test_board_version_triggers.py checks that each is on the database, so a later rebuild
that loses one fails there.
"""

import importlib

from django.db import migrations

BOARD_TRIGGERS_SQLITE: dict[str, str] = {
    name: body
    for module in (
        "0015_board_version",
        "0018_shakeup_board_version",
        "0024_phase_released_files_board_metrics",
    )
    for name, body in importlib.import_module(f"competitions.migrations.{module}").SQLITE.items()
}


def make_again(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "sqlite":
        return
    for name, body in BOARD_TRIGGERS_SQLITE.items():
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
        schema_editor.execute(f"CREATE TRIGGER {name} {body}")


class Migration(migrations.Migration):
    dependencies = [
        ("competitions", "0025_phase_task_version"),
    ]

    # Backwards: the triggers stay, as 0015, 0018 and 0024 meant them to be.
    operations = [migrations.RunPython(make_again, migrations.RunPython.noop)]
