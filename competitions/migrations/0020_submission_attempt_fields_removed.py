"""The claim, heartbeat and per-run result fields leave Submission: 0019 copied them into its
attempts (Attempt rows).

SQLite drops a column by rebuilding the table, which fails while a trigger reads the table
(0015's board-version triggers on replications look up their submission's competition):
those are dropped first and made again after, as 0015 made them.
"""

import importlib

from django.db import migrations

BOARD_VERSION = importlib.import_module("competitions.migrations.0015_board_version")
READING_SUBMISSIONS = {
    name: body
    for name, body in BOARD_VERSION.SQLITE.items()
    if "competitions_submission" in body
}


def drop_triggers(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        for name in READING_SUBMISSIONS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


def make_triggers(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        for name, body in READING_SUBMISSIONS.items():
            schema_editor.execute(f"CREATE TRIGGER {name} {body}")


class Migration(migrations.Migration):
    dependencies = [
        ("competitions", "0019_submission_attempts"),
    ]

    operations = [
        migrations.RunPython(drop_triggers, make_triggers),
        migrations.RemoveField(
            model_name="submission",
            name="attempts",
        ),
        migrations.RemoveField(
            model_name="submission",
            name="duration_s",
        ),
        migrations.RemoveField(
            model_name="submission",
            name="finished_at",
        ),
        migrations.RemoveField(
            model_name="submission",
            name="heartbeat_at",
        ),
        migrations.RemoveField(
            model_name="submission",
            name="interruptions",
        ),
        migrations.RemoveField(
            model_name="submission",
            name="peak_memory_bytes",
        ),
        migrations.RemoveField(
            model_name="submission",
            name="scorer_image",
        ),
        migrations.RemoveField(
            model_name="submission",
            name="scorer_log",
        ),
        migrations.RemoveField(
            model_name="submission",
            name="scorer_name",
        ),
        migrations.RemoveField(
            model_name="submission",
            name="started_at",
        ),
        migrations.RemoveField(
            model_name="submission",
            name="worker",
        ),
        migrations.RunPython(make_triggers, drop_triggers),
    ]
