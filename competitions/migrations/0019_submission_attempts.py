"""A submission's claims become Attempt rows: who scored it, when, with what, how it ended.

The claim, heartbeat and per-run result fields leave Submission (queued_at stays: the queue's
clock) in 0020, a migration of its own: on PostgreSQL a table that rows were just inserted
against (their foreign keys' checks pending) cannot be altered in the same transaction. `attempt_rows` turns one submission's old fields into its attempts: the latest claim
(number = its old `attempts`) with every detail; the earlier claims by number and outcome
only (their details were never kept), the `interruptions` latest of them INTERRUPTED (so the
reaper's allowance goes on where it was), the rest RETURNED. `submission_fields` is the
reverse, for a migration back.
"""

from __future__ import annotations

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

MOVED = (
    "worker", "started_at", "heartbeat_at", "finished_at", "duration_s", "peak_memory_bytes",
    "scorer_name", "scorer_image", "scorer_log",
)  # fmt: skip
OLD = ("id", "status", "failure", "queued_at", "attempts", "interruptions", *MOVED)
BATCH = 500


def _latest_outcome(row: dict[str, Any]) -> str:
    status = row["status"]
    if status in ("running", "scored", "failed"):
        return status
    # Queued (or cancelled while queued) after a claim: the reaper or the worker gave it back.
    return "interrupted" if row["interruptions"] else "returned"


def attempt_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The attempts of one submission, from its old fields (`OLD`); none if never claimed."""
    claims = row["attempts"] or (1 if row["started_at"] else 0)
    if not claims:
        return []
    outcome = _latest_outcome(row)
    latest = {
        "submission_id": row["id"],
        "number": claims,
        "outcome": outcome,
        # Queued again after its latest claim: the time is of the requeue, not of this claim.
        "queued_at": row["queued_at"] if outcome in ("running", "scored", "failed") else None,
        **{field: row[field] for field in MOVED},
    }
    # Claimed before heartbeats existed: the start stands for the beat (as the reaper did).
    latest["heartbeat_at"] = latest["heartbeat_at"] or latest["started_at"]
    for field in ("worker", "scorer_name", "scorer_image", "scorer_log"):
        latest[field] = latest[field] or ""
    # The latest claim is one of the interruptions when it was reaped (requeued, or the
    # one that failed the submission for the platform).
    interrupted = row["interruptions"] - (
        outcome == "interrupted" or (outcome == "failed" and row["failure"] == "platform")
    )
    earlier = [
        {
            "submission_id": row["id"],
            "number": number,
            "outcome": "interrupted" if claims - number <= interrupted else "returned",
        }
        for number in range(1, claims)
    ]
    return [*earlier, latest]


def submission_fields(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """The old Submission fields from a submission's attempts (number order)."""
    latest = attempts[-1]
    fields = {field: latest[field] for field in MOVED}
    fields["worker"] = fields["worker"] or ""
    interrupted = sum(1 for a in attempts if a["outcome"] == "interrupted")
    return fields | {"attempts": latest["number"], "interruptions": interrupted}


def forwards(apps, schema_editor) -> None:
    Submission = apps.get_model("competitions", "Submission")
    Attempt = apps.get_model("competitions", "Attempt")
    batch: list[Any] = []
    for row in Submission.objects.order_by("pk").values(*OLD).iterator(chunk_size=BATCH):
        batch.extend(Attempt(**fields) for fields in attempt_rows(row))
        if len(batch) >= BATCH:
            Attempt.objects.bulk_create(batch)
            batch = []
    Attempt.objects.bulk_create(batch)


def backwards(apps, schema_editor) -> None:
    Submission = apps.get_model("competitions", "Submission")
    Attempt = apps.get_model("competitions", "Attempt")
    by_submission: dict[int, list[dict[str, Any]]] = {}
    rows = Attempt.objects.order_by("submission_id", "number").values(
        "submission_id", "number", "outcome", *MOVED
    )
    for row in rows.iterator(chunk_size=BATCH):
        by_submission.setdefault(row["submission_id"], []).append(row)
    for submission_id, attempts in by_submission.items():
        Submission.objects.filter(pk=submission_id).update(**submission_fields(attempts))


class Migration(migrations.Migration):
    dependencies = [
        ("competitions", "0018_shakeup_board_version"),
    ]

    operations = [
        migrations.CreateModel(
            name="Attempt",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.PositiveSmallIntegerField()),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("running", "Running"),
                            ("scored", "Scored"),
                            ("failed", "Failed"),
                            ("interrupted", "Interrupted (its worker stopped)"),
                            ("returned", "Given back to the queue"),
                        ],
                        default="running",
                        max_length=12,
                    ),
                ),
                ("worker", models.CharField(blank=True, max_length=200)),
                ("queued_at", models.DateTimeField(blank=True, null=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("heartbeat_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("duration_s", models.FloatField(blank=True, null=True)),
                ("peak_memory_bytes", models.BigIntegerField(blank=True, null=True)),
                ("scorer_name", models.CharField(blank=True, max_length=100)),
                ("scorer_image", models.CharField(blank=True, max_length=200)),
                ("scorer_log", models.TextField(blank=True)),
                (
                    "submission",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="scoring_attempts",
                        to="competitions.submission",
                    ),
                ),
            ],
            options={
                "ordering": ["submission", "number"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("outcome", "running")),
                        fields=["heartbeat_at"],
                        name="attempt_running_heartbeat",
                    ),
                    models.Index(fields=["finished_at"], name="attempt_finished"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("submission", "number"), name="attempt_unique_number"
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("outcome", "running")),
                        fields=("submission",),
                        name="attempt_one_running",
                    ),
                ],
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
