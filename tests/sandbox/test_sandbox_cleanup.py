"""Each worker host's clean-up after dead workers: containers killed at their deadline,
work folders of attempts that are over removed, and nothing of another deployment touched
on a shared engine.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker.errors
import pytest
import redis
from django.conf import settings
from django.core.files.base import ContentFile

from competitions.models import Submission, Task
from competitions.services.submissions import submission_create
from competitions.services.teams import competition_join
from judging.cleanup import (
    SCORE,
    attempt_work_dir,
    cleanup_timer_start,
    cleanup_timer_stop,
    work_dir_parse,
    work_dirs_cleanup,
)
from judging.images import DockerImages, images_gc, submission_repository
from judging.services import SUBMISSION_LABEL, submission_score
from scoring.sandbox_docker import DockerRunner
from scoring.sandbox_fake import FakeRunner
from scoring.sandbox_labels import (
    DEADLINE_LABEL,
    DEPLOYMENT_LABEL,
    OWNER_LABEL,
    SANDBOX_LABEL,
    STARTED_LABEL,
)
from scoring.scorers import InProcessScorer
from tests import factories
from tests.sandbox import hostile_images as h
from tests.worker_process import worker_process

ROOT = Path(__file__).resolve().parents[2]
Status = Submission.Status

# Starts a sandbox run as a worker would, then waits to be SIGKILLed mid-run.
_DOOMED_WORKER = """
import sys
from pathlib import Path
from scoring.sandbox import SandboxLimits
from scoring.sandbox_docker import DockerRunner

image, deployment, output = sys.argv[1:4]
DockerRunner(deployment=deployment).run(
    image=image, command=["sleep", "600"], mounts=[], output_dir=Path(output),
    limits=SandboxLimits(memory_bytes=64 * 1024**2, timeout_s=2),
)
"""


@pytest.fixture
def deployment() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def containers(docker_client):
    """Starts labelled `sleep` containers; removes those still there afterwards."""
    started = []

    def start(labels: dict[str, str], image: str) -> str:
        container = docker_client.containers.run(
            image, ["sleep", "60"], network_mode="none", detach=True, labels=labels
        )
        started.append(container.id)
        return container.id

    yield start
    for container_id in started:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(container_id).remove(force=True)


def _exists(docker_client, container_id: str) -> bool:
    return bool(docker_client.containers.list(all=True, sparse=True, filters={"id": container_id}))


def _labels(deployment: str | None, deadline: float) -> dict[str, str]:
    labels = {SANDBOX_LABEL: "1", STARTED_LABEL: f"{deadline - 2:.0f}"}
    labels[DEADLINE_LABEL] = f"{deadline:.0f}"
    if deployment is not None:
        labels[DEPLOYMENT_LABEL] = deployment
    return labels


@pytest.mark.docker
def test_a_container_whose_worker_was_killed_is_killed_at_its_deadline_by_the_periodic_cleanup(
    docker_client, scorer_image, tmp_path, settings
):
    settings.HELDOUT_SANDBOX_CLEANUP_EVERY_S = 0.2
    settings.HELDOUT_SANDBOX_CLEANUP_GRACE_S = 0
    settings.HELDOUT_WORK_DIR = tmp_path / "work"
    worker = subprocess.Popen(
        [sys.executable, "-c", _DOOMED_WORKER, scorer_image, settings.HELDOUT_DEPLOYMENT_ID,
         str(tmp_path / "output")],
        cwd=ROOT,
    )  # fmt: skip
    owner = f"{OWNER_LABEL}={socket.gethostname()}:{worker.pid}"
    found: list = []
    try:
        for _ in range(100):
            found = docker_client.containers.list(filters={"label": owner, "status": "running"})
            if found:
                break
            time.sleep(0.1)
        assert found, "the worker started no container"
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        container = found[0]
        deadline = float(container.labels[DEADLINE_LABEL])
        assert deadline - float(container.labels[STARTED_LABEL]) == pytest.approx(2, abs=1)

        cleanup_timer_start()
        while _exists(docker_client, container.id) and time.time() < deadline + 10:
            time.sleep(0.1)
        gone_at = time.time()

        assert not _exists(docker_client, container.id)
        assert deadline - 1 <= gone_at < deadline + 3
    finally:
        cleanup_timer_stop()
        worker.kill()
        for leftover in docker_client.containers.list(all=True, filters={"label": owner}):
            leftover.remove(force=True)


@pytest.mark.docker
def test_cleanup_kills_only_this_deployments_containers_past_their_deadline(
    docker_client, scorer_image, containers, deployment
):
    now = time.time()
    mine_stale = containers(_labels(deployment, now - 5), scorer_image)
    mine_running = containers(_labels(deployment, now + 60), scorer_image)
    others_stale = containers(_labels(f"{deployment}-other", now - 600), scorer_image)
    unlabelled_stale = containers(_labels(None, now - 600), scorer_image)

    removed = DockerRunner(docker_client, deployment=deployment).cleanup_stale(grace_s=1)

    assert removed == 1
    assert not _exists(docker_client, mine_stale)
    assert _exists(docker_client, mine_running)
    assert _exists(docker_client, others_stale)
    assert _exists(docker_client, unlabelled_stale)


def test_a_runner_without_a_deployment_refuses_to_clean_up(docker_client):
    with pytest.raises(ValueError, match="deployment"):
        DockerRunner(docker_client).cleanup_stale()


@pytest.mark.docker
def test_image_collection_leaves_another_deployments_images_alone(
    docker_client, scorer_image, settings, deployment
):
    other = f"{deployment}-other"
    settings.HELDOUT_DEPLOYMENT_ID = deployment
    base = docker_client.images.get(scorer_image)
    mine = f"{submission_repository()}:1-aaaa"
    theirs = [f"{submission_repository(deployment=other)}:{n}-aaaa" for n in (1, 2)]
    for tag in [mine, *theirs]:
        base.tag(*tag.split(":"))
    try:
        removed = images_gc(keep=set(), client=docker_client)

        assert removed == 1
        assert mine not in docker_client.images.get(scorer_image).tags
        assert set(theirs) <= set(docker_client.images.get(scorer_image).tags)
    finally:
        for tag in theirs:
            docker_client.images.remove(tag)


@pytest.mark.docker
def test_a_built_image_and_its_check_container_carry_the_deployment(
    docker_client, scorer_image, tmp_path, deployment
):
    base = h.slim_python_image(docker_client, scorer_image)
    context = h.tar_bytes(
        [
            h.file_entry("Dockerfile", f"FROM {base}\nCOPY run.py /app/\nCMD python3 /app/run.py\n".encode()),
            h.file_entry("run.py", b"print('hi')\n"),
        ]
    )  # fmt: skip
    archive = tmp_path / "context.tar"
    archive.write_bytes(context)
    tag = f"{submission_repository(deployment=deployment)}:1-built"
    images = DockerImages(docker_client, max_bytes=2**30, deployment=deployment)
    try:
        loaded = images.ensure(tag=tag, archive=archive, build_bases=[base])

        assert docker_client.images.get(loaded.digest).labels[DEPLOYMENT_LABEL] == deployment
    finally:
        images_gc(
            keep=set(),
            client=docker_client,
            repository=submission_repository(deployment=deployment),
        )


# --- work folders ----------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _folder(root: Path, kind: str, object_id: int, attempt: int, pid: int, host: str) -> Path:
    path = root / f"{kind}-{object_id}-{attempt}-abc123-{pid}@{host}"
    (path / "inference-output").mkdir(parents=True)
    (path / "inference-output" / "predictions.csv").write_text("id,y\n")
    return path


def test_the_folders_of_attempts_that_are_over_are_removed_and_live_ones_kept(
    competition, participant, tmp_path, settings
):
    settings.HELDOUT_WORK_DIR = tmp_path
    team = factories.team_for(competition, "cleanup-team")
    running = factories.submission_row(team)
    running.save()
    factories.claimed(running, number=2)
    here, pid = socket.gethostname(), os.getpid()
    live = _folder(tmp_path, SCORE, running.pk, 2, pid, here)
    dead_worker = _folder(tmp_path, SCORE, running.pk, 2, _dead_pid(), here)
    earlier_attempt = _folder(tmp_path, SCORE, running.pk, 1, pid, here)
    other_host_live = _folder(tmp_path, SCORE, running.pk, 2, 1, "other-host")
    other_host_over = _folder(tmp_path, SCORE, running.pk + 1000, 1, 1, "other-host")
    replication_over = _folder(tmp_path, "replicate", 999_999, 1, pid, here)
    not_ours = tmp_path / "notes"
    not_ours.mkdir()

    removed = work_dirs_cleanup()

    assert removed == 4
    assert {p.name for p in tmp_path.iterdir()} == {live.name, other_host_live.name, "notes"}
    for gone in (dead_worker, earlier_attempt, other_host_over, replication_over):
        assert not gone.exists()


def test_a_scoring_attempt_works_in_a_named_folder_under_the_work_dir_and_removes_it(
    competition, participant, tmp_path, settings
):
    settings.HELDOUT_WORK_DIR = tmp_path
    seen: list[Path] = []
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )

    class Watching(InProcessScorer):
        def score(self, *, workdir: Path, **kwargs):
            seen.append(workdir)
            assert work_dirs_cleanup() == 0  # a live attempt's folder stays
            return super().score(workdir=workdir, **kwargs)

    submission_score(submission_id=submission.pk, scorer=Watching(), runner=FakeRunner())

    owner = work_dir_parse(seen[0])
    assert owner is not None
    assert (owner.kind, owner.object_id, owner.attempt) == (SCORE, submission.pk, 1)
    assert (owner.pid, owner.host) == (os.getpid(), socket.gethostname())
    assert seen[0].parent == tmp_path
    assert not seen[0].exists()


def test_an_attempt_work_dir_is_private(tmp_path, settings):
    settings.HELDOUT_WORK_DIR = tmp_path / "work"
    with attempt_work_dir(kind=SCORE, object_id=1, attempt=1) as path:
        assert path.stat().st_mode & 0o777 == 0o700
    assert not path.exists()


# --- a real worker -----------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_every_worker_runs_the_cleanup_periodically_and_spares_another_deployments_containers(
    docker_client, scorer_image, containers, tmp_path, monkeypatch
):
    work = tmp_path / "work"
    monkeypatch.setenv("HELDOUT_WORK_DIR", str(work))
    monkeypatch.setenv("HELDOUT_SANDBOX_CLEANUP_EVERY_S", "0.5")
    monkeypatch.setenv("HELDOUT_SANDBOX_CLEANUP_GRACE_S", "0")
    deadline = time.time() + 6  # past the worker's start-up, so a later round kills it
    leftover = containers(_labels(settings.HELDOUT_DEPLOYMENT_ID, deadline), scorer_image)
    # Another deployment's, long past its deadline, on the same engine: not this worker's.
    theirs = containers(_labels(f"{settings.HELDOUT_DEPLOYMENT_ID}-other", 1.0), scorer_image)
    dead = _folder(work, SCORE, 123_456, 1, _dead_pid(), socket.gethostname())
    log = tmp_path / "worker.log"

    with worker_process(log) as proc:
        while _exists(docker_client, leftover) and time.time() < deadline + 30:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        gone_at = time.time()

    assert not _exists(docker_client, leftover), log.read_text()[-3000:]
    assert _exists(docker_client, theirs)  # the rounds that removed ours left it
    # Killed at the first round past its deadline, however slow the worker's start.
    assert deadline - 1 <= gone_at < deadline + 20, log.read_text()[-3000:]
    assert not dead.exists()


# --- the deployment id -------------------------------------------------------------------


def _deployment_id(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """HELDOUT_DEPLOYMENT_ID as the settings compute it in a fresh process with `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HELDOUT_", "DATABASE_"))}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from config.settings import base; print(base.HELDOUT_DEPLOYMENT_ID)",
        ],
        cwd=ROOT,
        env={**base, "DJANGO_SECRET_KEY": "x", "CELERY_BROKER_URL": "redis://localhost/0", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_default_deployment_id_is_stable_and_differs_between_deployments(tmp_path):
    def default(data_dir: str, database: str) -> str:
        found = _deployment_id(
            tmp_path,
            HELDOUT_DATA_DIR=str(tmp_path / data_dir),
            DATABASE_URL=f"postgres://u@db:5432/{database}",
        )
        assert found.returncode == 0, found.stderr
        return found.stdout.strip()

    first = default("a", "heldout")

    assert first == default("a", "heldout")
    assert len({first, default("b", "heldout"), default("a", "heldout_ci")}) == 3
    assert DockerRunner(deployment=first).deployment == first  # a valid id


@pytest.mark.parametrize("bad", ["Prod", "a/b", "a--b", "-a", "x" * 41])
def test_a_deployment_id_that_cannot_name_images_is_refused_at_start_up(tmp_path, bad):
    found = _deployment_id(tmp_path, HELDOUT_DATA_DIR=str(tmp_path), HELDOUT_DEPLOYMENT_ID=bad)

    assert found.returncode != 0
    assert "HELDOUT_DEPLOYMENT_ID" in found.stderr


@pytest.mark.docker
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_the_container_of_a_sigkilled_worker_is_killed_at_its_deadline_by_the_next_worker(
    docker_client, scorer_image, organizer, participant, tmp_path, monkeypatch
):
    work = tmp_path / "work"
    for name, value in {
        "HELDOUT_SCORER": "docker",
        "HELDOUT_SCORER_IMAGE": scorer_image,
        "HELDOUT_WORK_DIR": str(work),
        "HELDOUT_SANDBOX_CLEANUP_EVERY_S": "0.5",
        "HELDOUT_SANDBOX_CLEANUP_GRACE_S": "0",
    }.items():
        monkeypatch.setenv(name, value)
    competition = factories.make_competition(organizers=[organizer])
    competition_join(competition=competition, user=participant, accept_rules=True)
    task = competition.task
    # A scoring program that outlives any worker: only its 8 s time limit stops it.
    task.scorer_program.save("score.py", ContentFile(b"import time\ntime.sleep(600)\n"))
    Task.objects.filter(pk=task.pk).update(limits={"timeout_s": 8})
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    mine = [
        f"{SUBMISSION_LABEL}={submission.pk}",
        f"{DEPLOYMENT_LABEL}={settings.HELDOUT_DEPLOYMENT_ID}",
    ]
    found: list = []
    try:
        with worker_process(tmp_path / "first.log") as first:
            for _ in range(600):
                found = docker_client.containers.list(filters={"label": mine, "status": "running"})
                if found or first.poll() is not None:
                    break
                time.sleep(0.1)
            assert found, (tmp_path / "first.log").read_text()[-3000:]
            first.kill()
            first.wait()
        container = found[0]
        deadline = float(container.labels[DEADLINE_LABEL])
        assert [p.name.startswith(f"score-{submission.pk}-1-") for p in work.iterdir()] == [True]

        log = tmp_path / "second.log"
        with worker_process(log) as second:
            last_seen = time.time()
            while _exists(docker_client, container.id) and time.time() < deadline + 30:
                assert second.poll() is None, log.read_text()[-3000:]
                last_seen = time.time()
                time.sleep(0.1)
            gone_at = time.time()

        assert not _exists(docker_client, container.id), log.read_text()[-3000:]
        assert last_seen >= deadline - 1  # not before its deadline...
        assert gone_at < deadline + 20  # ...but at the next worker's first round past it
        assert list(work.iterdir()) == []  # the killed attempt's folder went too
        submission.refresh_from_db()
        # Left for the reaper: its first attempt still running.
        assert submission.status == Status.RUNNING
        assert factories.outcomes(submission) == ["running"]
    finally:
        for leftover in docker_client.containers.list(all=True, filters={"label": mine}):
            leftover.remove(force=True)
        _forget_unacked(submission.pk)


def _forget_unacked(submission_id: int) -> None:
    """Drop the killed worker's unacknowledged message, which Redis would otherwise hand to
    some later test run's worker after its visibility timeout."""
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        return  # the file-system broker does not keep unacknowledged messages
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for tag, raw in broker.hgetall("unacked").items():
        message = json.loads(raw)[0]
        args = json.loads(base64.b64decode(message["body"]))[0]
        if message["headers"].get("task") == "scoring.tasks.submission_score_task" and args == [
            submission_id
        ]:
            broker.hdel("unacked", tag)
            broker.zrem("unacked_index", tag)
