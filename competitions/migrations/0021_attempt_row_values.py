"""A scored attempt keeps its per-row values (row_values, row_kind), moved from Submission:
each submission's go to its latest scored attempt (one made, known only by its outcome, if
it has none). On SQLite the columns go around 0015's triggers, as in 0020."""

import importlib

import django.db.models.deletion  # noqa: F401
from django.db import migrations, models

import competitions.models.core

FIELDS_REMOVED = importlib.import_module(
    "competitions.migrations.0020_submission_attempt_fields_removed"
)


def _latest_scored(Attempt, submission_id: int):
    return (
        Attempt.objects.filter(submission_id=submission_id, outcome="scored")
        .order_by("-number")
        .first()
    )


def forwards(apps, schema_editor) -> None:
    Submission = apps.get_model("competitions", "Submission")
    Attempt = apps.get_model("competitions", "Attempt")
    rows = Submission.objects.exclude(row_values="").values_list("pk", "row_values", "row_kind")
    for pk, values, kind in rows.iterator(chunk_size=500):
        attempt = _latest_scored(Attempt, pk)
        if attempt is None:
            last = Attempt.objects.filter(submission_id=pk).order_by("-number").first()
            attempt = Attempt(submission_id=pk, number=last.number + 1 if last else 1)
            attempt.outcome = "scored"
        attempt.row_values = values
        attempt.row_kind = kind
        attempt.save()


def backwards(apps, schema_editor) -> None:
    Submission = apps.get_model("competitions", "Submission")
    Attempt = apps.get_model("competitions", "Attempt")
    rows = Attempt.objects.exclude(row_values="").order_by("submission_id", "number")
    for submission_id, values, kind in rows.values_list("submission_id", "row_values", "row_kind"):
        Submission.objects.filter(pk=submission_id).update(row_values=values, row_kind=kind)


class Migration(migrations.Migration):
    dependencies = [
        ("competitions", "0020_submission_attempt_fields_removed"),
    ]

    operations = [
        migrations.AddField(
            model_name="attempt",
            name="row_values",
            field=models.FileField(
                blank=True,
                max_length=300,
                storage=competitions.models.core._private_storage,
                upload_to="rows/",
            ),
        ),
        migrations.AddField(
            model_name="attempt",
            name="row_kind",
            field=models.CharField(blank=True, max_length=20),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RunPython(FIELDS_REMOVED.drop_triggers, FIELDS_REMOVED.make_triggers),
        migrations.RemoveField(
            model_name="submission",
            name="row_values",
        ),
        migrations.RemoveField(
            model_name="submission",
            name="row_kind",
        ),
        migrations.RunPython(FIELDS_REMOVED.make_triggers, FIELDS_REMOVED.drop_triggers),
    ]
