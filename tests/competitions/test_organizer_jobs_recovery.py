"""Organizers' jobs whose worker died: heartbeats while running, the reaper records a job
whose work committed as done, runs an uncommitted one again, and gives up after
HELDOUT_MAX_ATTEMPTS interruptions (competitions.services.jobs)."""

from __future__ import annotations

import signal
import socket
import time
from contextlib import ExitStack
from datetime import timedelta

import docker
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from competitions.models import LeaderboardEntry, OrganizerJob, Submission, Task
from competitions.services import jobs
from competitions.services.jobs import (
    organizer_job_run,
    organizer_jobs_reap,
    rescore_all_start,
    version_switch_start,
)
from competitions.services.scorers import task_scorer_set
from scoring.sandbox_labels import OWNER_LABEL
from tests import factories
from tests.conftest import client_for
from tests.jobs import add_version, scored
from tests.worker_process import beat_process, until, worker_process

TRUTH_V2 = factories.truth_csv().replace("id0,0,", "id0,1,")


def _died(job: OrganizerJob, settings, *, result: dict | None = None) -> None:
    """The job's worker claimed it and stopped beating long ago."""
    long_ago = timezone.now() - timedelta(seconds=settings.HELDOUT_RECOVER_AFTER_S + 5)
    OrganizerJob.objects.filter(pk=job.pk).update(
        status="running",
        attempts=1,
        started_at=long_ago,
        heartbeat_at=long_ago,
        result=result or {},
    )


@pytest.mark.django_db
def test_a_dead_switch_that_committed_is_recorded_done_and_not_run_again(
    settings, competition, organizer, participant, django_capture_on_commit_callbacks
):
    scored(competition, participant)
    add_version(competition, TRUTH_V2)
    job = version_switch_start(competition=competition, user=organizer, number=2)
    line = competition.organizer_actions.get()
    assert (line.kind, line.by, line.target) == ("version_switch_started", organizer, "version 2")
    # The worker switched (one transaction, which records `committed`) and died after.
    with django_capture_on_commit_callbacks():
        jobs._run_version_switch(job, None)
    _died(job, settings, result=OrganizerJob.objects.get(pk=job.pk).result)
    assert OrganizerJob.objects.get(pk=job.pk).result["committed"] is True

    with django_capture_on_commit_callbacks() as sent:
        assert organizer_jobs_reap() == {"done": 1, "requeued": 0, "failed": 0, "resent": 0}

    job.refresh_from_db()
    assert (job.status, job.interruptions, job.progress_done) == ("done", 0, job.progress_total)
    assert job.finished_at is not None
    assert sent == []  # nothing to run again
    competition.task.refresh_from_db()
    assert competition.task.version == 2


@pytest.mark.django_db
def test_a_dead_job_that_committed_nothing_runs_again_and_finishes(
    settings, competition, organizer, participant, django_capture_on_commit_callbacks
):
    scored(competition, participant)
    add_version(competition, TRUTH_V2)
    job = version_switch_start(competition=competition, user=organizer, number=2)
    _died(job, settings)

    with django_capture_on_commit_callbacks() as sent:
        assert organizer_jobs_reap() == {"done": 0, "requeued": 1, "failed": 0, "resent": 0}
    assert len(sent) == 1  # sent to a worker again
    job.refresh_from_db()
    assert (job.status, job.interruptions, job.heartbeat_at) == ("queued", 1, None)
    # It no longer blocks as running, but a queued switch does, as any queued one.
    with pytest.raises(jobs.InvalidState, match="is queued"):
        rescore_all_start(competition=competition, user=organizer)

    assert organizer_job_run(job_id=job.pk) is True
    job.refresh_from_db()
    assert (job.status, job.attempts, job.interruptions) == ("done", 2, 1)
    shown = client_for(organizer).get(f"/api/v1/jobs/{job.pk}/").json()
    assert (shown["status"], shown["interruptions"]) == ("done", 1)
    assert job.result == {"number": 2, "rescore": False, "queued": 0}
    competition.task.refresh_from_db()
    assert competition.task.version == 2


@pytest.mark.django_db
def test_a_job_whose_workers_died_too_often_fails_with_the_reason(settings, competition, organizer):
    add_version(competition, TRUTH_V2)
    job = version_switch_start(competition=competition, user=organizer, number=2)
    _died(job, settings)
    OrganizerJob.objects.filter(pk=job.pk).update(interruptions=settings.HELDOUT_MAX_ATTEMPTS - 1)

    assert organizer_jobs_reap() == {"done": 0, "requeued": 0, "failed": 1, "resent": 0}

    job.refresh_from_db()
    assert job.status == "failed"
    assert job.interruptions == settings.HELDOUT_MAX_ATTEMPTS
    assert "Start it again" in job.message
    competition.task.refresh_from_db()
    assert competition.task.version == 1
    # Failed, it no longer blocks the next switch.
    assert version_switch_start(competition=competition, user=organizer, number=2)


@pytest.mark.django_db
def test_a_job_with_a_recent_heartbeat_is_left_alone_and_still_blocks(
    settings, competition, organizer
):
    add_version(competition, TRUTH_V2)
    job = version_switch_start(competition=competition, user=organizer, number=2)
    # Started long ago (a long rescore), but its worker beats.
    long_ago = timezone.now() - timedelta(seconds=settings.HELDOUT_RESEND_AFTER_S + 5)
    OrganizerJob.objects.filter(pk=job.pk).update(
        status="running", attempts=1, started_at=long_ago, heartbeat_at=timezone.now()
    )

    assert organizer_jobs_reap() == {"done": 0, "requeued": 0, "failed": 0, "resent": 0}
    assert OrganizerJob.objects.get(pk=job.pk).status == "running"
    with pytest.raises(jobs.InvalidState, match="is running"):
        rescore_all_start(competition=competition, user=organizer)


@pytest.mark.django_db
def test_a_job_queued_too_long_is_sent_again_and_stops_blocking_meanwhile(
    settings, competition, organizer, django_capture_on_commit_callbacks
):
    add_version(competition, TRUTH_V2)
    job = version_switch_start(competition=competition, user=organizer, number=2)
    lost = timezone.now() - timedelta(seconds=settings.HELDOUT_RESEND_AFTER_S + 5)
    OrganizerJob.objects.filter(pk=job.pk).update(queued_at=lost)  # its message was lost
    fresh = rescore_all_start(competition=competition, user=organizer)  # not blocked by it

    with django_capture_on_commit_callbacks() as sent:
        assert organizer_jobs_reap() == {"done": 0, "requeued": 0, "failed": 0, "resent": 1}

    assert len(sent) == 1
    job.refresh_from_db()
    assert job.status == "queued"
    assert job.queued_at > lost
    assert OrganizerJob.objects.get(pk=fresh.pk).queued_at < job.queued_at


@pytest.mark.django_db
def test_a_dry_run_taken_back_keeps_its_program_for_the_next_attempt_until_it_fails(
    settings, competition, organizer, monkeypatch
):
    job = task_scorer_set(
        task=competition.task,
        uploaded_file=SimpleUploadedFile("score.py", SLOW_PROGRAM.encode()),
        user=organizer,
    )
    assert job is not None

    def taken_back(job_, runner):  # the reaper sent it again while this attempt ran
        OrganizerJob.objects.filter(pk=job_.pk).update(status="queued", heartbeat_at=None)
        return {}

    monkeypatch.setitem(jobs._HANDLERS, OrganizerJob.Kind.DRY_RUN, taken_back)
    assert organizer_job_run(job_id=job.pk) is True
    job.refresh_from_db()
    name = job.file.name
    assert job.status == "queued"
    assert name
    assert job.file.storage.exists(name)

    _died(job, settings)
    OrganizerJob.objects.filter(pk=job.pk).update(interruptions=settings.HELDOUT_MAX_ATTEMPTS - 1)
    assert organizer_jobs_reap()["failed"] == 1
    job.refresh_from_db()
    assert (job.status, job.file.name) == ("failed", "")
    assert not job.file.storage.exists(name)


@pytest.mark.django_db
def test_a_rescore_all_that_fails_commits_nothing_and_is_not_marked_committed(
    competition, organizer, participant, monkeypatch
):
    submission = scored(competition, participant)
    job = rescore_all_start(competition=competition, user=organizer)

    def broken(job_, queued):  # the commit marker fails: the rescore goes with it
        raise RuntimeError("lost")

    monkeypatch.setattr(jobs, "_committed", broken)
    assert organizer_job_run(job_id=job.pk) is True

    job.refresh_from_db()
    assert job.status == "failed"
    assert "committed" not in job.result
    assert Submission.objects.get(pk=submission.pk).status == "scored"  # not queued again


@pytest.mark.django_db(transaction=True)
def test_a_running_job_heartbeats_and_a_late_finish_of_a_reaped_claim_changes_nothing(
    settings, organizer, monkeypatch
):
    settings.HELDOUT_HEARTBEAT_S = 0.2
    competition = factories.make_competition(organizers=[organizer])
    add_version(competition, TRUTH_V2)
    job = version_switch_start(competition=competition, user=organizer, number=2)
    beats: list = []

    def slow(job_, runner):
        started = OrganizerJob.objects.get(pk=job_.pk).heartbeat_at
        time.sleep(1.0)
        beats.append((started, OrganizerJob.objects.get(pk=job_.pk).heartbeat_at))
        # Meanwhile the reaper took the claim back (say the worker was paused).
        OrganizerJob.objects.filter(pk=job_.pk).update(status="queued", heartbeat_at=None)
        return {"slow": True}

    monkeypatch.setitem(jobs._HANDLERS, OrganizerJob.Kind.VERSION_SWITCH, slow)
    assert organizer_job_run(job_id=job.pk) is True

    ((claimed_at, later),) = beats
    assert later > claimed_at  # beaten while it ran
    job.refresh_from_db()
    assert (job.status, job.result, job.finished_at) == ("queued", {}, None)


# --- a real worker SIGKILLed in a dry run ------------------------------------------------------

RECOVERY = {
    "HELDOUT_SCORER": "docker",
    "HELDOUT_HEARTBEAT_S": "1",
    "HELDOUT_RECOVER_AFTER_S": "6",
    "HELDOUT_REAP_EVERY_S": "1",
}
SCORES = (
    '{"public": {"roc_auc": 0.5, "accuracy": 0.5}, "private": {"roc_auc": 0.5, "accuracy": 0.5}}'
)
SLOW_PROGRAM = f"import time\ntime.sleep(5)\nopen('/output/scores.json', 'w').write({SCORES!r})\n"


@pytest.mark.docker
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_dry_run_whose_worker_is_sigkilled_is_run_again_by_another_worker(tmp_path, organizer):
    engine = docker.from_env()
    engine.ping()
    competition = factories.make_competition(organizers=[organizer])
    task = Task.objects.get(competition=competition)
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log", tmp_path / "beat.log"]
    with ExitStack() as stack:
        stack.enter_context(beat_process(logs[2], RECOVERY))
        doomed = stack.enter_context(worker_process(logs[0], RECOVERY))
        job = task_scorer_set(
            task=task,
            uploaded_file=SimpleUploadedFile("score.py", SLOW_PROGRAM.encode()),
            user=organizer,
        )
        assert job is not None

        def beating() -> bool:
            row = OrganizerJob.objects.get(pk=job.pk)
            claimed, beat = row.started_at, row.heartbeat_at
            if row.status != "running" or claimed is None or beat is None:
                return False
            return beat > claimed

        until(beating, "the dry run's first heartbeat", 60, logs)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        stack.enter_context(worker_process(logs[1], RECOVERY))
        until(
            lambda: OrganizerJob.objects.get(pk=job.pk).status in ("done", "failed"),
            "the dry run's second attempt",
            90,
            logs,
        )
        owner = f"{OWNER_LABEL}={socket.gethostname()}:{doomed.pid}"
        for container in engine.containers.list(all=True, filters={"label": owner}):
            container.remove(force=True)  # the dead worker's, left to run out
    engine.close()
    job.refresh_from_db()
    assert job.status == "done", job.message
    assert (job.attempts, job.interruptions) == (2, 1)
    task.refresh_from_db()
    assert task.scorer_program_sha256 == job.params["program_sha256"]
    assert not LeaderboardEntry.objects.exists()
