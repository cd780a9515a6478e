"""The board version (competitions/models/boards.py) and the triggers that count it up.

Whatever changes what a leaderboard shows counts its competition's version up in the same
statement: a leaderboard row written or deleted (scores, rebuilds, version switches, bans,
disqualifications, deleted teams and submissions, intervals), the competition's row changed
(finalize, reopen, visibility, title, dates), a team renamed, the board's metrics changed, a
finished replication (the badge), the board's statistics (the plausible ranks' bounds). Who may see what is checked on each request, not cached. The task's
ranked version is read with the board version (competitions/boardcache.py), so a version
switch needs no trigger on the task's row (whose lock it would take before the teams').
"""

from django.db import migrations, models

# PostgreSQL: leaderboard rows are counted once per statement (a rebuild writes thousands),
# the rarer rows once per row.
POSTGRESQL = """
CREATE FUNCTION heldout_board_bump(ids bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO competitions_boardversion AS b (competition_id, version)
    SELECT id, 1 FROM (SELECT DISTINCT unnest(ids) AS id) AS changed
    WHERE id IS NOT NULL ORDER BY id
    ON CONFLICT (competition_id) DO UPDATE SET version = b.version + 1;
$$;

CREATE FUNCTION heldout_board_entries_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM heldout_board_bump(ARRAY(SELECT competition_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM heldout_board_bump(ARRAY(SELECT competition_id FROM old_rows));
    ELSE
        -- update_or_create writes rows that did not change: those show nothing new.
        PERFORM heldout_board_bump(ARRAY(
            SELECT unnest(ARRAY[n.competition_id, o.competition_id])
            FROM new_rows n JOIN old_rows o ON o.id = n.id
            WHERE n IS DISTINCT FROM o));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER heldout_board_entries_insert AFTER INSERT ON competitions_leaderboardentry
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION heldout_board_entries_changed();
CREATE TRIGGER heldout_board_entries_update AFTER UPDATE ON competitions_leaderboardentry
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION heldout_board_entries_changed();
CREATE TRIGGER heldout_board_entries_delete AFTER DELETE ON competitions_leaderboardentry
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION heldout_board_entries_changed();

CREATE FUNCTION heldout_board_competition_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM heldout_board_bump(ARRAY[NEW.id]);
    RETURN NULL;
END $$;
CREATE TRIGGER heldout_board_competition AFTER UPDATE ON competitions_competition
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW)
    EXECUTE FUNCTION heldout_board_competition_changed();

CREATE FUNCTION heldout_board_of_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM heldout_board_bump(ARRAY[NEW.competition_id]);
    RETURN NULL;
END $$;
CREATE TRIGGER heldout_board_team AFTER UPDATE ON competitions_team
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION heldout_board_of_row_changed();
CREATE TRIGGER heldout_board_task AFTER UPDATE ON competitions_task
    FOR EACH ROW WHEN (OLD.primary_metric IS DISTINCT FROM NEW.primary_metric
                       OR OLD.secondary_metrics IS DISTINCT FROM NEW.secondary_metrics)
    EXECUTE FUNCTION heldout_board_of_row_changed();

CREATE TRIGGER heldout_board_statistics_insert AFTER INSERT ON competitions_boardstatistics
    FOR EACH ROW EXECUTE FUNCTION heldout_board_of_row_changed();
CREATE TRIGGER heldout_board_statistics_update AFTER UPDATE ON competitions_boardstatistics
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW)
    EXECUTE FUNCTION heldout_board_of_row_changed();
CREATE FUNCTION heldout_board_of_old_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM heldout_board_bump(ARRAY[OLD.competition_id]);
    RETURN NULL;
END $$;
CREATE TRIGGER heldout_board_statistics_delete AFTER DELETE ON competitions_boardstatistics
    FOR EACH ROW EXECUTE FUNCTION heldout_board_of_old_row_changed();

CREATE FUNCTION heldout_board_replication_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM heldout_board_bump(ARRAY(
        SELECT competition_id FROM competitions_submission
        WHERE id IN (
            CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.submission_id END,
            CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.submission_id END)));
    RETURN NULL;
END $$;
CREATE TRIGGER heldout_board_replication_insert AFTER INSERT ON competitions_replication
    FOR EACH ROW WHEN (NEW.status = 'done')
    EXECUTE FUNCTION heldout_board_replication_changed();
CREATE TRIGGER heldout_board_replication_update AFTER UPDATE ON competitions_replication
    FOR EACH ROW WHEN ((OLD.status = 'done' OR NEW.status = 'done') AND OLD IS DISTINCT FROM NEW)
    EXECUTE FUNCTION heldout_board_replication_changed();
CREATE TRIGGER heldout_board_replication_delete AFTER DELETE ON competitions_replication
    FOR EACH ROW WHEN (OLD.status = 'done')
    EXECUTE FUNCTION heldout_board_replication_changed();
"""

POSTGRESQL_DROP = """
DROP TRIGGER heldout_board_entries_insert ON competitions_leaderboardentry;
DROP TRIGGER heldout_board_entries_update ON competitions_leaderboardentry;
DROP TRIGGER heldout_board_entries_delete ON competitions_leaderboardentry;
DROP TRIGGER heldout_board_competition ON competitions_competition;
DROP TRIGGER heldout_board_team ON competitions_team;
DROP TRIGGER heldout_board_task ON competitions_task;
DROP TRIGGER heldout_board_statistics_insert ON competitions_boardstatistics;
DROP TRIGGER heldout_board_statistics_update ON competitions_boardstatistics;
DROP TRIGGER heldout_board_statistics_delete ON competitions_boardstatistics;
DROP TRIGGER heldout_board_replication_insert ON competitions_replication;
DROP TRIGGER heldout_board_replication_update ON competitions_replication;
DROP TRIGGER heldout_board_replication_delete ON competitions_replication;
DROP FUNCTION heldout_board_entries_changed();
DROP FUNCTION heldout_board_competition_changed();
DROP FUNCTION heldout_board_of_row_changed();
DROP FUNCTION heldout_board_of_old_row_changed();
DROP FUNCTION heldout_board_replication_changed();
DROP FUNCTION heldout_board_bump(bigint[]);
"""


def _sqlite_bump(competition: str) -> str:
    return (
        "INSERT INTO competitions_boardversion (competition_id, version) "
        f"VALUES ({competition}, 1) "
        "ON CONFLICT (competition_id) DO UPDATE SET version = version + 1;"
    )


_ENTRY_COLUMNS = (
    "competition_id split team_id submission_id task_version score sort_key scores "
    "submitted_at entries last_submission_at ci_low ci_high interval_submission_id"
).split()
_REPLICATION_BUMP = (
    "INSERT INTO competitions_boardversion (competition_id, version) "
    "SELECT competition_id, 1 FROM competitions_submission WHERE id = {row}.submission_id "
    "ON CONFLICT (competition_id) DO UPDATE SET version = version + 1;"
)
# SQLite (the embedded default) has row triggers only; it serialises writers anyway.
SQLITE = {
    "heldout_board_entries_insert": "AFTER INSERT ON competitions_leaderboardentry "
    f"BEGIN {_sqlite_bump('NEW.competition_id')} END",
    "heldout_board_entries_update": "AFTER UPDATE ON competitions_leaderboardentry WHEN "
    + " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _ENTRY_COLUMNS)
    + f" BEGIN {_sqlite_bump('NEW.competition_id')} {_sqlite_bump('OLD.competition_id')} END",
    "heldout_board_entries_delete": "AFTER DELETE ON competitions_leaderboardentry "
    f"BEGIN {_sqlite_bump('OLD.competition_id')} END",
    "heldout_board_competition": "AFTER UPDATE ON competitions_competition "
    f"BEGIN {_sqlite_bump('NEW.id')} END",
    "heldout_board_team": "AFTER UPDATE OF name ON competitions_team "
    f"WHEN OLD.name IS NOT NEW.name BEGIN {_sqlite_bump('NEW.competition_id')} END",
    "heldout_board_task": "AFTER UPDATE ON competitions_task "
    "WHEN OLD.primary_metric IS NOT NEW.primary_metric "
    "OR OLD.secondary_metrics IS NOT NEW.secondary_metrics "
    f"BEGIN {_sqlite_bump('NEW.competition_id')} END",
    "heldout_board_statistics_insert": "AFTER INSERT ON competitions_boardstatistics "
    f"BEGIN {_sqlite_bump('NEW.competition_id')} END",
    "heldout_board_statistics_update": "AFTER UPDATE ON competitions_boardstatistics "
    f"BEGIN {_sqlite_bump('NEW.competition_id')} END",
    "heldout_board_statistics_delete": "AFTER DELETE ON competitions_boardstatistics "
    f"BEGIN {_sqlite_bump('OLD.competition_id')} END",
    "heldout_board_replication_insert": "AFTER INSERT ON competitions_replication "
    f"WHEN NEW.status = 'done' BEGIN {_REPLICATION_BUMP.format(row='NEW')} END",
    "heldout_board_replication_update": "AFTER UPDATE ON competitions_replication "
    "WHEN OLD.status = 'done' OR NEW.status = 'done' "
    f"BEGIN {_REPLICATION_BUMP.format(row='NEW')} {_REPLICATION_BUMP.format(row='OLD')} END",
    "heldout_board_replication_delete": "AFTER DELETE ON competitions_replication "
    f"WHEN OLD.status = 'done' BEGIN {_REPLICATION_BUMP.format(row='OLD')} END",
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
        ("competitions", "0014_merge_prize_intervals"),
    ]

    operations = [
        migrations.CreateModel(
            name="BoardVersion",
            fields=[
                ("competition_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("version", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(install, uninstall),
    ]
