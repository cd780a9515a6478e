"""Scoring in production: the sandbox by default where Docker answers, per-task limits,
every container run recorded, clear failures, who sees which logs, and the clean-up
after a worker that died.

Tests marked `docker` run real containers; the others script the runner (FakeRunner) or
use an engine address where none answers.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from competitions.models import SandboxRun, Submission, Task
from competitions.sandboxes import sandbox_limits
from competitions.services.submissions import submission_create
from competitions.services.teams import competition_join
from judging.reaper import submissions_reap
from judging.services import (
    SUBMISSION_LABEL,
    docker_available,
    sandbox_cleanup_stale,
    scorer_default,
    submission_score,
)
from scoring import cli
from scoring.docker_scorer import DockerScorer
from scoring.program_scorer import ProgramScorer
from scoring.sandbox import RunResult, SandboxLimits
from scoring.sandbox_fake import FakeCall, FakeRunner
from scoring.sandbox_labels import DEADLINE_LABEL, DEPLOYMENT_LABEL, SANDBOX_LABEL, STARTED_LABEL
from scoring.scorers import InProcessScorer
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
Status = Submission.Status
SECRET_LOG = "truth row id3 has label 1"


@pytest.fixture(autouse=True)
def fresh_docker_decision():
    """docker_available() is decided once per process; each test decides afresh."""
    docker_available.cache_clear()
    yield
    docker_available.cache_clear()


def _submit(competition, user, content: bytes | None = None) -> Submission:
    return submission_create(
        competition=competition,
        user=user,
        uploaded_file=factories.upload(content or factories.perfect_predictions()),
    )


def _set_task(competition, **fields) -> Task:
    Task.objects.filter(competition=competition).update(**fields)
    competition.task.refresh_from_db()
    return competition.task


def run_cli_on_the_host(call: FakeCall) -> None:
    """What the scorer container does, with its paths mapped back to the host."""
    args = [str(call.host_path(a)) if a.startswith("/") else a for a in call.command[3:]]
    assert cli.main(args) == 0


def failed_run(**fields: Any) -> RunResult:
    values: dict[str, Any] = {
        "exit_code": 1,
        "timed_out": False,
        "oom_killed": False,
        "duration_s": 0.7,
        "peak_memory_bytes": 30 * 1024**2,
        "log": f"Traceback (most recent call last):\nValueError: {SECRET_LOG}\n",
        "output_truncated": False,
        "image": "heldout-scorer:test",
        "image_digest": "sha256:fake",
    }
    return RunResult(**(values | fields))


# --- choosing the scorer ------------------------------------------------------------------


def test_in_process_scoring_says_so_on_the_submission(competition, participant, api, settings):
    settings.HELDOUT_SCORER = "in-process"
    submission = _submit(competition, participant)

    assert submission_score(submission_id=submission.pk) is True

    body = api(participant).get(f"/api/v1/submissions/{submission.pk}/").json()
    assert body["status"] == "scored"
    assert body["scorer"] == {
        "name": "in-process",
        "image": None,
        "sandboxed": False,
        "note": "scored in-process (no sandbox)",
    }
    assert body["runs"] == []


def test_auto_scores_in_process_when_no_engine_answers(monkeypatch, tmp_path, settings):
    settings.HELDOUT_SCORER = "auto"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")

    assert isinstance(scorer_default(), InProcessScorer)


@pytest.mark.docker
def test_auto_picks_docker_where_an_engine_answers_and_keeps_its_first_decision(
    scorer_image, monkeypatch, tmp_path, settings
):
    settings.HELDOUT_SCORER = "auto"
    settings.HELDOUT_SCORER_IMAGE = scorer_image
    assert isinstance(scorer_default(runner=FakeRunner()), DockerScorer)

    # The engine going away later changes nothing in this process...
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    assert isinstance(scorer_default(runner=FakeRunner()), DockerScorer)
    # ...and a process that starts without one scores in-process.
    docker_available.cache_clear()
    assert isinstance(scorer_default(runner=FakeRunner()), InProcessScorer)


@pytest.mark.docker
def test_auto_scores_in_process_where_the_engine_lacks_the_scorer_image(docker_client, settings):
    settings.HELDOUT_SCORER = "auto"
    settings.HELDOUT_SCORER_IMAGE = "heldout-scorer:never-built"

    assert isinstance(scorer_default(runner=FakeRunner()), InProcessScorer)


@pytest.mark.django_db
def test_a_tasks_limits_override_the_settings_and_its_image_the_default(competition, settings):
    settings.HELDOUT_SCORER = "docker"
    settings.HELDOUT_SANDBOX_PIDS = 99
    task = _set_task(
        competition, limits={"memory_mb": 512, "timeout_s": 30}, scorer_image="scorer:v2"
    )

    scorer = scorer_default(task=task, runner=FakeRunner())

    assert isinstance(scorer, DockerScorer)
    assert scorer.image == "scorer:v2"
    assert scorer.limits == SandboxLimits(
        memory_bytes=512 * 1024**2,
        cpus=settings.HELDOUT_SANDBOX_CPUS,
        pids=99,
        timeout_s=30,
        tmpfs_bytes=settings.HELDOUT_SANDBOX_TMPFS_MB * 1024**2,
        output_bytes=settings.HELDOUT_SANDBOX_OUTPUT_MB * 1024**2,
        log_bytes=settings.HELDOUT_SANDBOX_LOG_KB * 1024,
    )


@pytest.mark.django_db
def test_an_organizers_program_runs_in_the_sandbox_even_when_scoring_is_in_process(
    competition, settings
):
    settings.HELDOUT_SCORER = "in-process"
    task = _set_task(competition, scorer_program="scorers/score.py")

    assert isinstance(scorer_default(task=task, runner=FakeRunner()), ProgramScorer)


def test_the_default_limits_are_the_settings(settings):
    assert sandbox_limits() == SandboxLimits(
        memory_bytes=settings.HELDOUT_SANDBOX_MEMORY_MB * 1024**2,
        cpus=settings.HELDOUT_SANDBOX_CPUS,
        pids=settings.HELDOUT_SANDBOX_PIDS,
        timeout_s=settings.HELDOUT_SANDBOX_TIMEOUT_S,
        tmpfs_bytes=settings.HELDOUT_SANDBOX_TMPFS_MB * 1024**2,
        output_bytes=settings.HELDOUT_SANDBOX_OUTPUT_MB * 1024**2,
        log_bytes=settings.HELDOUT_SANDBOX_LOG_KB * 1024,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"memory": 512}, "unknown sandbox limit 'memory'"),
        ({"memory_mb": "512"}, "must be a number"),
        ({"cpus": True}, "must be a number"),
        ({"pids": 0}, "pids must be at least 8"),
        ({"memory_mb": 1}, "memory_mb must be at least 16"),
        ({"timeout_s": float("inf")}, "timeout_s must be at least 1"),
    ],
)
def test_it_refuses_limits_that_are_unknown_or_unsafe(overrides, message):
    with pytest.raises(ValueError, match=message):
        sandbox_limits(overrides=overrides)


@pytest.mark.django_db
def test_a_task_with_invalid_limits_fails_its_submissions_with_the_reason(
    competition, participant, settings
):
    settings.HELDOUT_SCORER = "docker"
    _set_task(competition, limits={"memory_gb": 4})
    submission = _submit(competition, participant)
    runner = FakeRunner()

    submission_score(submission_id=submission.pk, runner=runner)

    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert "unknown sandbox limit 'memory_gb'" in submission.error_message
    assert runner.calls == []


# --- recording the runs -------------------------------------------------------------------


@pytest.mark.django_db
def test_every_container_run_is_recorded_with_its_limits_image_and_outcome(
    competition, participant, settings
):
    settings.HELDOUT_SCORER = "docker"
    _set_task(competition, limits={"memory_mb": 300})
    submission = _submit(competition, participant)
    runner = FakeRunner(behaviour=run_cli_on_the_host)

    submission_score(submission_id=submission.pk, runner=runner)

    submission.refresh_from_db()
    assert submission.status == Status.SCORED
    attempt = factories.latest(submission)
    assert (attempt.scorer_name, attempt.scorer_image) == (
        "docker",
        f"{settings.HELDOUT_SCORER_IMAGE}@sha256:fake",
    )
    (call,) = runner.calls
    assert call.labels[SUBMISSION_LABEL] == str(submission.pk)
    (run,) = SandboxRun.objects.filter(submission=submission)
    assert (run.stage, run.attempt, run.exit_code, run.failure_reason) == ("scoring", 1, 0, "")
    assert (run.image, run.image_digest) == (settings.HELDOUT_SCORER_IMAGE, "sha256:fake")
    assert run.limits == dataclasses.asdict(call.limits)
    assert run.limits["memory_bytes"] == 300 * 1024**2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (failed_run(oom_killed=True, exit_code=137), "exceeded memory limit of 2 GiB"),
        (failed_run(timed_out=True, exit_code=137), "exceeded time limit of 600 s"),
        (failed_run(output_truncated=True, exit_code=0), "exceeded the output limit of 64 MiB"),
    ],
)
def test_a_failed_run_fails_the_submission_with_its_reason(
    competition, participant, settings, result, reason
):
    settings.HELDOUT_SCORER = "docker"
    submission = _submit(competition, participant)

    submission_score(submission_id=submission.pk, runner=FakeRunner(result=result))

    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert submission.failure == Submission.Failure.ERROR
    assert submission.error_message == f"The scorer {reason}"
    attempt = factories.latest(submission)
    assert attempt.outcome == "failed"
    assert attempt.scorer_image == "heldout-scorer:test@sha256:fake"
    assert attempt.peak_memory_bytes == 30 * 1024**2
    run = SandboxRun.objects.get(submission=submission)
    assert run.failure_reason == reason
    assert (run.oom_killed, run.timed_out) == (result.oom_killed, result.timed_out)


# --- who sees which logs ------------------------------------------------------------------


@pytest.fixture
def crashed(competition, participant, settings):
    """A submission whose scorer crashed, printing a line about the labels."""
    settings.HELDOUT_SCORER = "docker"
    submission = _submit(competition, participant)
    submission_score(submission_id=submission.pk, runner=FakeRunner(result=failed_run()))
    submission.refresh_from_db()
    return submission


def test_a_participant_gets_the_exit_code_but_not_the_scorers_log(crashed, participant, api):
    body = api(participant).get(f"/api/v1/submissions/{crashed.pk}/").json()

    assert body["status"] == "failed"
    assert body["error_message"] == (
        "The scorer exited with code 1 (the scorer's log is shown to the organizers only)"
    )
    (run,) = body["runs"]
    assert (run["stage"], run["exit_code"], run["log_visible"], run["log"]) == (
        "scoring",
        1,
        False,
        None,
    )
    assert SECRET_LOG not in str(body)
    listed = api(participant).get(f"/api/v1/competitions/{crashed.competition.slug}/submissions/")
    assert SECRET_LOG not in listed.content.decode()
    assert listed.json()["results"][0]["runs"][0]["log"] is None


def test_an_organizer_sees_the_scorers_log_and_full_reason(crashed, organizer, api):
    body = api(organizer).get(f"/api/v1/submissions/{crashed.pk}/").json()

    (run,) = body["runs"]
    assert run["log_visible"] is True
    assert SECRET_LOG in run["log"]
    assert run["failure_reason"].startswith("exited with code 1: ")
    assert SECRET_LOG in run["failure_reason"]
    assert run["log_truncated"] is False
    listed = api(organizer).get(f"/api/v1/competitions/{crashed.competition.slug}/submissions/")
    assert SECRET_LOG in listed.json()["results"][0]["runs"][0]["log"]


def test_participants_see_the_scorers_log_once_the_organizers_opt_in(
    crashed, competition, participant, api
):
    _set_task(competition, scorer_logs_visible=True)

    (run,) = api(participant).get(f"/api/v1/submissions/{crashed.pk}/").json()["runs"]

    assert SECRET_LOG in run["log"]
    assert SECRET_LOG in run["failure_reason"]


def test_a_participant_always_sees_the_log_of_their_own_container(crashed, participant, api):
    SandboxRun.objects.create(
        submission=crashed,
        stage=SandboxRun.Stage.INFERENCE,
        image="team/model@sha256:abc",
        exit_code=1,
        log="[log truncated: 10 earlier bytes not kept]\nmy model printed this",
        failure_reason="exited with code 1: my model printed this",
    )

    runs = api(participant).get(f"/api/v1/submissions/{crashed.pk}/").json()["runs"]

    by_stage = {run["stage"]: run for run in runs}
    assert by_stage["inference"]["log"].endswith("my model printed this")
    assert by_stage["inference"]["log_truncated"] is True
    assert by_stage["inference"]["failure_reason"] == "exited with code 1: my model printed this"
    assert by_stage["scoring"]["log"] is None


@pytest.mark.parametrize("persona", ["other_participant", "outsider", "other_organizer"])
def test_nobody_else_sees_the_runs(crashed, persona, request, api, other_competition):
    user = request.getfixturevalue(persona)

    response = api(user).get(f"/api/v1/submissions/{crashed.pk}/")
    listed = api(user).get(f"/api/v1/competitions/{crashed.competition.slug}/submissions/")

    assert response.status_code == 404
    assert SECRET_LOG not in listed.content.decode()
    assert crashed.pk not in [s["id"] for s in listed.json()["results"]]


def test_cleanup_without_an_engine_removes_nothing_and_does_not_raise(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")

    assert sandbox_cleanup_stale() == 0


# --- real containers ----------------------------------------------------------------------


@pytest.fixture
def real_scorer(scorer_image, settings):
    settings.HELDOUT_SCORER = "auto"
    settings.HELDOUT_SCORER_IMAGE = scorer_image
    return scorer_image


@pytest.mark.docker
def test_a_submission_is_scored_in_the_sandbox_by_default_where_docker_answers(
    real_scorer, docker_client, competition, participant, api
):
    submission = _submit(competition, participant)

    assert submission_score(submission_id=submission.pk) is True

    submission.refresh_from_db()
    assert submission.status == Status.SCORED, submission.error_message
    digest = docker_client.images.get(real_scorer).id
    assert factories.latest(submission).scorer_name == "docker"
    assert factories.latest(submission).scorer_image == f"{real_scorer}@{digest}"
    (run,) = SandboxRun.objects.filter(submission=submission)
    assert (run.exit_code, run.timed_out, run.oom_killed, run.image_digest) == (
        0,
        False,
        False,
        digest,
    )
    assert run.peak_memory_bytes is not None
    assert run.peak_memory_bytes > 10 * 1024**2
    assert run.limits == dataclasses.asdict(sandbox_limits())
    body = api(participant).get(f"/api/v1/submissions/{submission.pk}/").json()
    assert body["scorer"]["sandboxed"] is True
    assert body["scorer"]["note"] is None
    assert body["scores"]["public"]["roc_auc"] == 1.0


@pytest.mark.docker
def test_a_scorer_past_its_tasks_memory_limit_fails_with_the_reason(
    real_scorer, competition, participant
):
    _set_task(competition, limits={"memory_mb": 20})
    submission = _submit(competition, participant)

    submission_score(submission_id=submission.pk)

    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert submission.error_message == "The scorer exceeded memory limit of 20 MiB"
    run = SandboxRun.objects.get(submission=submission)
    assert run.oom_killed is True
    assert run.failure_reason == "exceeded memory limit of 20 MiB"


@pytest.mark.docker
def test_a_scorer_past_its_tasks_time_limit_is_killed_with_the_reason(
    real_scorer, competition, participant
):
    # With a twentieth of a core the scorer's imports alone take longer than a second,
    # however fast the machine (with a whole core they sometimes finish in time).
    _set_task(competition, limits={"timeout_s": 1, "cpus": 0.05})
    submission = _submit(competition, participant)
    started = time.monotonic()

    submission_score(submission_id=submission.pk)

    assert time.monotonic() - started < 30
    submission.refresh_from_db()
    assert submission.error_message == "The scorer exceeded time limit of 1 s"
    run = SandboxRun.objects.get(submission=submission)
    assert run.timed_out is True
    assert run.duration_s is not None
    assert 1 <= run.duration_s < 5


# --- a worker that died -------------------------------------------------------------------


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{db.get('USER') or 'postgres'}{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def docker_worker(tmp_path, scorer_image):
    """Starts a real Celery worker (solo pool, queue cpu) scoring in the sandbox."""
    procs: list[subprocess.Popen] = []
    log = tmp_path / "worker.log"

    def start() -> subprocess.Popen:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": _database_url(),
            "HELDOUT_DATA_DIR": str(settings.DATA_DIR),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "HELDOUT_SCORER": "docker",
            "HELDOUT_SCORER_IMAGE": scorer_image,
        }
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker",
                 "-Q", "cpu", "--pool", "solo", "--without-heartbeat", "--without-mingle",
                 "--without-gossip", "-l", "INFO"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        procs.append(proc)
        return proc

    yield start, log
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait(condition, what: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            pytest.fail(f"the worker exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {timeout}s; worker log:\n{log.read_text()[-3000:]}")


@pytest.mark.docker
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_submission_whose_container_outlived_its_worker_is_requeued_and_scored(
    docker_worker, docker_client, scorer_image, organizer, participant, settings
):
    settings.HELDOUT_RECOVER_AFTER_S = 120
    competition = factories.make_competition(organizers=[organizer])
    competition_join(competition=competition, user=participant, accept_rules=True)
    submission = _submit(competition, participant)
    # Its worker died 20 minutes ago in the middle of the run...
    died = timezone.now() - timedelta(minutes=20)
    factories.claimed(submission, started_s_ago=20 * 60, worker="dead-host")
    # ...leaving its container behind, past its deadline.
    leftover = docker_client.containers.run(
        scorer_image,
        ["sleep", "600"],
        network_mode="none",
        detach=True,
        labels={
            SANDBOX_LABEL: "1",
            DEPLOYMENT_LABEL: settings.HELDOUT_DEPLOYMENT_ID,
            SUBMISSION_LABEL: str(submission.pk),
            STARTED_LABEL: f"{died.timestamp():.0f}",
            DEADLINE_LABEL: f"{died.timestamp() + 660:.0f}",
        },
    )
    try:
        start, log = docker_worker
        proc = start()

        def leftover_gone() -> bool:
            # sparse: no inspection of each container, which other runs may remove meanwhile.
            found = docker_client.containers.list(
                all=True, sparse=True, filters={"id": leftover.id}
            )
            return not found

        _wait(leftover_gone, "the removal of the leftover container", proc, log)
        reaped = submissions_reap()
        assert reaped == {"failed": 0, "requeued": 1, "resent": 0}, log.read_text()[-3000:]

        def scored() -> bool:
            submission.refresh_from_db()
            return submission.status in (Status.SCORED, Status.FAILED)

        _wait(scored, "the scoring of the requeued submission", proc, log)
    finally:
        if not leftover_gone():
            leftover.remove(force=True)
    assert submission.status == Status.SCORED, submission.error_message
    assert factories.outcomes(submission) == ["interrupted", "scored"]
    assert factories.latest(submission).scorer_name == "docker"
    assert [run.attempt for run in SandboxRun.objects.filter(submission=submission)] == [2]
    # The worker's clean-up removed it: it is this test run's deployment's, which no
    # other test run on the engine touches.
    assert "Sandbox clean-up: removed 1 container(s)" in log.read_text()
