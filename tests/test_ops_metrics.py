"""/metrics reports real values, read from PostgreSQL at the scrape: queue depth per queue,
the scoring-duration histogram, failures by reason and the heartbeats of running work
(the gunicorn side, the token and the outbox: tests/test_ops_live.py)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from competitions.models import Attempt, OrganizerJob, Replication
from competitions.ops.workers import worker_beat, worker_forget
from tests import factories

pytestmark = pytest.mark.django_db
TOKEN = "metrics-values-token"


def scrape(
    client, recover_after_s: float = 90
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape, by (sample name, sorted labels)."""
    with override_settings(HELDOUT_METRICS_TOKEN=TOKEN, HELDOUT_RECOVER_AFTER_S=recover_after_s):
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_the_scoring_duration_histogram_buckets_the_last_hour_of_finished_submissions(
    client, competition
):
    team = factories.team_for(competition, "timed")
    now = timezone.now()

    def scored(started_at, finished_at, outcome="scored") -> None:
        submission = factories.submission_row(team, status="scored")
        submission.save()
        Attempt.objects.create(
            submission=submission,
            number=1,
            outcome=outcome,
            started_at=started_at,
            finished_at=finished_at,
        )

    for took in (0.3, 3.0, 40.0):
        scored(now - timedelta(seconds=took), now)
    long_ago = now - timedelta(hours=3)  # outside the window
    scored(long_ago - timedelta(seconds=1), long_ago)
    scored(now - timedelta(seconds=100), now, outcome="interrupted")  # not a result
    samples = scrape(client)

    def bucket(le: str) -> float:
        return samples[("heldout_scoring_duration_seconds_bucket", (("le", le),))]

    assert bucket("0.5") == 1
    assert bucket("2.0") == 1
    assert bucket("5.0") == 2
    assert bucket("60.0") == 3
    assert bucket("+Inf") == 3
    assert samples[("heldout_scoring_duration_seconds_gcount", ())] == 3
    assert samples[("heldout_scoring_duration_seconds_gsum", ())] == pytest.approx(43.3, abs=0.01)


def test_failures_are_counted_by_reason_with_every_reason_present(client, competition):
    team = factories.team_for(competition, "failing")
    for failure in ("invalid", "invalid", "platform"):
        factories.submission_row(team, status="failed", failure=failure).save()
    factories.submission_row(team, status="scored").save()
    samples = scrape(client)
    failed = {
        dict(labels)["reason"]: value
        for (name, labels), value in samples.items()
        if name == "heldout_submissions_failed"
    }
    assert failed == {"invalid": 2, "platform": 1, "error": 0}


def test_heartbeats_report_the_stalest_running_work_and_count_the_dead_by_kind(
    client, competition, organizer
):
    team = factories.team_for(competition, "beating")
    now = timezone.now()
    dead = factories.submission_row(team)
    dead.save()
    factories.claimed(dead, started_s_ago=400, beat_s_ago=200)
    live = factories.submission_row(team)
    live.save()
    factories.claimed(live, started_s_ago=30, beat_s_ago=5)
    # Not beaten yet: its start counts, as the reaper reads it.
    OrganizerJob.objects.create(
        competition=competition,
        kind="rescore_all",
        status="running",
        started_at=now - timedelta(seconds=20),
    )
    done = factories.submission_row(team, status="scored")
    done.save()
    Attempt.objects.create(
        submission=done, number=1, outcome="scored", heartbeat_at=now - timedelta(hours=5)
    )
    samples = scrape(client)

    def value(name: str, kind: str) -> float:
        return samples[(name, (("kind", kind),))]

    assert 200 <= value("heldout_oldest_heartbeat_age_seconds", "submission") < 260
    assert value("heldout_stale_heartbeats", "submission") == 1
    assert 20 <= value("heldout_oldest_heartbeat_age_seconds", "job") < 80
    assert value("heldout_stale_heartbeats", "job") == 0
    assert value("heldout_oldest_heartbeat_age_seconds", "replication") == 0
    assert value("heldout_stale_heartbeats", "replication") == 0
    Replication.objects.create(
        submission=dead,
        requested_by=organizer,
        status="running",
        started_at=now - timedelta(seconds=100),
        heartbeat_at=now - timedelta(seconds=95),
    )
    assert value("heldout_stale_heartbeats", "replication") == 0  # the scrape before
    assert scrape(client)[("heldout_stale_heartbeats", (("kind", "replication"),))] == 1


def test_queue_depth_is_reported_per_queue_status_and_kind(client, competition, organizer):
    competition.task.queue = "gpu"
    competition.task.save(update_fields=["queue"])
    team = factories.team_for(competition, "queued")
    for status in ("queued", "queued", "running"):
        factories.submission_row(team, status=status).save()
    scored = factories.submission_row(team, status="scored")
    scored.save()
    Replication.objects.create(submission=scored, requested_by=organizer, queue="big")
    Replication.objects.create(submission=scored, requested_by=organizer)  # the task's queue
    samples = scrape(client)
    depth = {
        (dict(labels)["kind"], dict(labels)["queue"], dict(labels)["status"]): value
        for (name, labels), value in samples.items()
        if name == "heldout_queue_depth"
    }
    assert depth == {
        ("submission", "gpu", "queued"): 2,
        ("submission", "gpu", "running"): 1,
        ("replication", "big", "queued"): 1,
        ("replication", "gpu", "queued"): 1,
    }


def worker_ages(samples: dict) -> dict[str, float]:
    return {
        dict(labels)["worker"]: value
        for (name, labels), value in samples.items()
        if name == "heldout_worker_heartbeat_age_seconds"
    }


def test_each_workers_heartbeat_age_is_reported_and_the_live_ones_counted(client):
    now = time.time()
    worker_beat(hostname="celery@busy", at=now - 5)
    worker_beat(hostname="celery@silent", at=now - 200)
    samples = scrape(client)
    ages = worker_ages(samples)
    assert ages.keys() == {"celery@busy", "celery@silent"}
    assert 5 <= ages["celery@busy"] < 60
    assert 200 <= ages["celery@silent"] < 260
    assert samples[("heldout_workers_alive", ())] == 1
    worker_forget(hostname="celery@busy")  # stopped cleanly
    samples = scrape(client)
    assert worker_ages(samples).keys() == {"celery@silent"}
    assert samples[("heldout_workers_alive", ())] == 0


def test_a_new_worker_drops_the_forgotten_ones_from_the_index(client):
    worker_beat(hostname="celery@old")
    worker_forget(hostname="celery@old")
    worker_beat(hostname="celery@new")
    index = cache.get(f"heldout:workers:{settings.HELDOUT_DEPLOYMENT_ID}")
    assert index == ["celery@new"]
    assert worker_ages(scrape(client)).keys() == {"celery@new"}
