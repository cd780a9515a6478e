"""Migrations 0019-0021: a submission's claim and result fields (0019, 0020) and its per-row
values (0021) become its Attempt rows. Its row function is tested directly; the migration itself forwards and back
on this test database (PostgreSQL, or SQLite with DATABASE_URL unset)."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests import factories

migration = importlib.import_module("competitions.migrations.0019_submission_attempts")
BEFORE = ("competitions", "0018_shakeup_board_version")
AFTER = ("competitions", "0021_attempt_row_values")
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
# On SQLite too: 0020 and 0021 drop and make again the triggers around its rebuilt table.
pytestmark = pytest.mark.sqlite_too


def _old(**fields) -> dict:
    """A submission's old columns, as the migration reads them."""
    row = {
        "id": 7,
        "status": "scored",
        "failure": "",
        "queued_at": T0,
        "attempts": 1,
        "interruptions": 0,
        "worker": "host-a",
        "started_at": T0 + timedelta(seconds=5),
        "heartbeat_at": T0 + timedelta(seconds=6),
        "finished_at": T0 + timedelta(seconds=9),
        "duration_s": 3.5,
        "peak_memory_bytes": 1024,
        "scorer_name": "docker",
        "scorer_image": "heldout-scorer:1@sha256:abc",
        "scorer_log": "scored",
    }
    return row | fields


def test_a_scored_submission_becomes_one_scored_attempt_with_every_detail():
    (attempt,) = migration.attempt_rows(_old())

    assert attempt == {
        "submission_id": 7,
        "number": 1,
        "outcome": "scored",
        "queued_at": T0,
        "worker": "host-a",
        "started_at": T0 + timedelta(seconds=5),
        "heartbeat_at": T0 + timedelta(seconds=6),
        "finished_at": T0 + timedelta(seconds=9),
        "duration_s": 3.5,
        "peak_memory_bytes": 1024,
        "scorer_name": "docker",
        "scorer_image": "heldout-scorer:1@sha256:abc",
        "scorer_log": "scored",
    }


def test_a_never_claimed_submission_has_no_attempt():
    row = _old(status="queued", attempts=0, started_at=None, worker="", scorer_name="")
    assert migration.attempt_rows(row) == []


def test_a_running_submission_keeps_its_interruptions_as_earlier_interrupted_attempts():
    row = _old(status="running", attempts=4, interruptions=2, finished_at=None)

    attempts = migration.attempt_rows(row)

    assert [(a["number"], a["outcome"]) for a in attempts] == [
        (1, "returned"),
        (2, "interrupted"),
        (3, "interrupted"),
        (4, "running"),
    ]
    assert attempts[-1]["worker"] == "host-a"
    assert "worker" not in attempts[0]  # an earlier claim's details were never kept


def test_a_submission_requeued_by_the_reaper_has_its_latest_claim_interrupted():
    row = _old(status="queued", attempts=2, interruptions=2, queued_at=T0 + timedelta(hours=1))

    attempts = migration.attempt_rows(row)

    assert [a["outcome"] for a in attempts] == ["interrupted", "interrupted"]
    assert attempts[-1]["queued_at"] is None  # the requeue's time is not this claim's


def test_a_submission_the_platform_failed_ends_with_a_failed_attempt_after_its_interruptions():
    row = _old(status="failed", failure="platform", attempts=3, interruptions=3)

    outcomes = [a["outcome"] for a in migration.attempt_rows(row)]

    # As the reaper now records it: the last interruption fails the attempt.
    assert outcomes == ["interrupted", "interrupted", "failed"]


def test_a_claim_made_before_heartbeats_gets_its_start_as_its_beat():
    (attempt,) = migration.attempt_rows(_old(status="running", heartbeat_at=None))
    assert attempt["heartbeat_at"] == T0 + timedelta(seconds=5)


def test_the_old_fields_come_back_from_the_attempts():
    row = _old(status="running", attempts=3, interruptions=1, finished_at=None)
    back = migration.submission_fields(migration.attempt_rows(row))
    assert back == {k: row[k] for k in (*migration.MOVED, "attempts", "interruptions")}


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_the_values_into_attempts_and_back(competition):
    team = factories.team_for(competition, "migrated")
    scored = factories.submission_row(team, status="scored")
    scored.save()
    factories.submission_row(team, status="queued").save()
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([BEFORE])
        old = executor.loader.project_state([BEFORE]).apps.get_model("competitions", "Submission")
        old.objects.filter(pk=scored.pk).update(
            **_old(id=scored.pk, attempts=2, interruptions=1),
            row_values="rows/7.npy",
            row_kind="correct",
        )

        executor = MigrationExecutor(connection)
        executor.migrate([AFTER])
        new = executor.loader.project_state([AFTER]).apps.get_model("competitions", "Attempt")
        rows = new.objects.order_by("submission_id", "number")
        assert list(rows.values_list("submission_id", "number", "outcome", "worker")) == [
            (scored.pk, 1, "interrupted", ""),
            (scored.pk, 2, "scored", "host-a"),
        ]
        latest = rows.last()
        assert (latest.scorer_log, latest.row_values.name, latest.row_kind) == (
            "scored",
            "rows/7.npy",
            "correct",
        )

        executor = MigrationExecutor(connection)
        executor.migrate([BEFORE])
        old = executor.loader.project_state([BEFORE]).apps.get_model("competitions", "Submission")
        back = old.objects.values(
            "attempts", "interruptions", "worker", "duration_s", "row_values", "row_kind"
        )
        assert back.get(pk=scored.pk) == {
            "attempts": 2,
            "interruptions": 1,
            "worker": "host-a",
            "duration_s": 3.5,
            "row_values": "rows/7.npy",
            "row_kind": "correct",
        }
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
