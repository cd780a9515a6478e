"""Scorer images by registry digest, through Debian's docker-registry on loopback: pushed
once, pulled by every worker host that lacks them, identified by that digest everywhere,
and a registry that is down costs no submission anything (docs/production.md)."""

from __future__ import annotations

import re
import subprocess
import time
from contextlib import suppress
from pathlib import Path

import docker
import docker.errors
import pytest
from django.core.files.base import ContentFile

from competitions.models import ScorerMismatchReport, ScoringRun, Submission, TaskVersion
from competitions.services.submissions import enqueue_on_commit
from competitions.services.versions import task_version_ensure
from judging.images import DockerImages
from judging.inference import inference_run
from judging.services import docker_available, submission_score
from scoring.image_identity import SCORER_CONTENT_LABEL
from scoring.sandbox import SandboxUnavailable
from scoring.sandbox_docker import DockerRunner
from scoring.scorers import InProcessScorer
from tests import factories
from tests.registry_server import free_port, registry_server, untag
from tests.sandbox import hostile_images as h
from tests.sandbox.hostile_setup import TEST_CSV, make_container_phase, submit_archive, truth_probe
from tests.worker_process import worker_process

ROOT = Path(__file__).resolve().parents[2]
# The test files the predicting image (hostile_images.PREDICT) reads.
FILES = {"test.csv": TEST_CSV.encode(), "probe.txt": truth_probe()}
PUSH = ROOT / "deploy" / "scorer-image" / "push.sh"


@pytest.mark.docker
def test_push_prints_a_digest_reference_that_identifies_the_scorer(
    docker_client, scorer_image, registry, pushed_scorer
):
    repository, _, digest = pushed_scorer.partition("@")
    assert repository == f"{registry['address']}/heldout/scorer"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    runner = DockerRunner(docker_client)

    assert runner.scorer_identity(pushed_scorer) == digest
    # The same image run by its local tag keeps the build's content label.
    label = docker_client.images.get(scorer_image).labels[SCORER_CONTENT_LABEL]
    assert runner.scorer_identity(scorer_image) == label != digest
    assert runner.image_digest(pushed_scorer) == runner.image_digest(scorer_image)


@pytest.mark.docker
def test_a_digest_reference_on_a_registry_that_is_down_is_unavailable_not_an_error(
    docker_client, pushed_scorer
):
    digest = pushed_scorer.partition("@")[2]
    nowhere = f"127.0.0.1:{free_port()}/heldout/scorer@{digest}"

    with pytest.raises(SandboxUnavailable, match=f"could not pull {re.escape(nowhere)}"):
        DockerRunner(docker_client).scorer_identity(nowhere)


def test_push_without_a_registry_setting_refuses_with_a_sentence():
    done = subprocess.run(
        ["bash", str(PUSH), "heldout-scorer:latest"],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode != 0
    assert done.stdout == ""
    assert "HELDOUT_IMAGE_REGISTRY is not set" in done.stderr


@pytest.mark.docker
def test_auto_mode_takes_a_digest_reference_it_does_not_have_yet_for_the_sandbox(
    settings, pushed_scorer
):
    digest = pushed_scorer.partition("@")[2]
    settings.HELDOUT_SCORER_IMAGE = f"127.0.0.1:{free_port()}/heldout/scorer@{digest}"
    docker_available.cache_clear()
    try:
        # Not pulled yet (its registry is even down): the runner pulls it when it scores.
        assert docker_available()
    finally:
        docker_available.cache_clear()


def _worker_env(image: str) -> dict[str, str]:
    return {
        "HELDOUT_SCORER": "docker",
        "HELDOUT_SCORER_IMAGE": image,
        "HELDOUT_SCORER_IMAGES": image,
    }


def _queued_submission(organizer) -> int:
    competition = factories.make_competition(organizers=[organizer])
    submission = factories.submission_row(factories.team_for(competition, "pullers"))
    submission.file.save("p.csv", ContentFile(factories.perfect_predictions()), save=False)
    submission.save()
    enqueue_on_commit(submission.pk)  # sent at once: these tests run in autocommit
    return submission.pk


def _wait(condition, what: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}\n{log.read_text()[-3000:]}")


def _scored(pk: int) -> bool:
    return Submission.objects.filter(pk=pk, status="scored").exists()


def _assert_scored_under(pk: int, digest: str) -> None:
    submission = Submission.objects.get(pk=pk)
    assert submission.failure == "", submission.error_message
    assert factories.interruptions(submission) == 0
    version = TaskVersion.objects.get(task=submission.competition.task)
    assert version.scorer_image_digest == digest
    run = ScoringRun.objects.get(submission=submission)
    assert run.manifest["scorer"]["identity"] == digest


@pytest.mark.docker
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_without_the_image_pulls_it_by_digest_and_records_that_digest(
    tmp_path, organizer, docker_client, pushed_scorer
):
    digest = pushed_scorer.partition("@")[2]
    untag(docker_client, pushed_scorer)  # as on a host that never had it
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(pushed_scorer)
    pk = _queued_submission(organizer)
    log = tmp_path / "worker.log"

    with worker_process(log, _worker_env(pushed_scorer)):
        _wait(lambda: _scored(pk), "the worker to pull the scorer and score", log)

    _assert_scored_under(pk, digest)
    assert docker_client.images.get(pushed_scorer).id  # pulled, and kept for the next run


@pytest.mark.docker
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_registry_outage_gives_the_submission_back_and_it_is_scored_once_it_returns(
    tmp_path, organizer, docker_client, registry, pushed_scorer
):
    digest = pushed_scorer.partition("@")[2]
    port = free_port()
    # A second server on the same storage, not started yet: the registry is down.
    reference = f"127.0.0.1:{port}/heldout/scorer@{digest}"
    pk = _queued_submission(organizer)
    log = tmp_path / "worker.log"
    try:
        with worker_process(log, _worker_env(reference)):
            _wait(lambda: "goes back to the queue" in log.read_text(), "a give-back", log)
            assert f"could not pull {reference}" in log.read_text()
            submission = Submission.objects.get(pk=pk)
            assert submission.status in ("queued", "running")
            assert submission.failure == ""

            with registry_server(registry["storage"], port, tmp_path / "again.log"):
                _wait(lambda: _scored(pk), "scoring once the registry is back", log)
    finally:
        untag(docker_client, reference)

    _assert_scored_under(pk, digest)


@pytest.mark.docker
def test_a_version_recorded_by_local_builds_is_scored_under_by_the_same_scorer_by_digest(
    organizer, docker_client, scorer_image, pushed_scorer, settings
):
    settings.HELDOUT_SCORER = "docker"
    settings.HELDOUT_SCORER_IMAGE = pushed_scorer
    label = docker_client.images.get(scorer_image).labels[SCORER_CONTENT_LABEL]
    competition = factories.make_competition(organizers=[organizer])
    version = task_version_ensure(task=competition.task)
    TaskVersion.objects.filter(pk=version.pk).update(scorer_image_digest=label)
    submission = factories.submission_row(factories.team_for(competition, "switchers"))
    submission.file.save("p.csv", ContentFile(factories.perfect_predictions()), save=False)
    submission.save()

    assert submission_score(submission_id=submission.pk, runner=DockerRunner(docker_client))

    submission.refresh_from_db()
    assert submission.status == Submission.Status.SCORED, submission.error_message
    # The same build inputs: no mismatch, no new version; the manifest names the digest.
    assert list(
        TaskVersion.objects.filter(task=competition.task).values_list(
            "number", "scorer_image_digest"
        )
    ) == [(version.number, label)]
    assert not ScorerMismatchReport.objects.exists()
    run = ScoringRun.objects.get(submission=submission)
    assert run.manifest["scorer"]["identity"] == pushed_scorer.partition("@")[2]


# --- Container submissions -------------------------------------------------------------------


@pytest.fixture(scope="module")
def predict_archive(docker_client, scorer_image, tmp_path_factory) -> Path:
    base = h.slim_python_image(docker_client, scorer_image)
    tag = h.script_image(docker_client, base, "predict", h.PREDICT)
    return h.save_image(docker_client, tag, tmp_path_factory.mktemp("predict") / "predict.tar")


def _registry_names(client: docker.DockerClient, image_id: str, address: str) -> list[str]:
    attrs = client.images.get(image_id).attrs
    names = [*attrs.get("RepoTags", []), *attrs.get("RepoDigests", [])]
    return [n for n in names if n.startswith(address)]


@pytest.mark.docker
def test_a_container_submission_loaded_on_one_host_is_pulled_by_digest_on_another(
    participant, competition, runner, predict_archive, registry, settings, tmp_path, monkeypatch
):
    settings.HELDOUT_IMAGE_REGISTRY = f"{registry['address']}/heldout"
    make_container_phase(competition, files=FILES)
    submission = submit_archive(competition, participant, predict_archive)
    client = runner.client

    try:
        scored = submission_score(
            submission_id=submission.pk, runner=runner, scorer=InProcessScorer(max_problems=10)
        )
        assert scored
        submission.refresh_from_db()
        assert submission.status == Submission.Status.SCORED, submission.error_message
        pushed = submission.container_image_pushed
        assert re.fullmatch(
            rf"{re.escape(registry['address'])}/heldout/submissions@sha256:[0-9a-f]{{64}}", pushed
        )
        image_id = submission.container_image_digest
        # Only the submission's own tag stays on the engine: collection works as before.
        assert _registry_names(client, image_id, registry["address"]) == []

        # Another host: no image under the submission's tag, and no archive to load.
        client.images.remove(submission.container_image)
        monkeypatch.setattr(
            DockerImages, "_from_archive", lambda *a: pytest.fail("the archive was loaded")
        )
        inference_run(submission=submission, runner=runner, workdir=tmp_path)

        assert client.images.get(submission.container_image).id == image_id
        assert _registry_names(client, image_id, registry["address"]) == []
        submission.refresh_from_db()
        assert (submission.container_image_pushed, submission.container_image_digest) == (
            pushed,
            image_id,
        )
    finally:
        with suppress(docker.errors.ImageNotFound):
            client.images.remove(submission.container_image)


@pytest.mark.docker
def test_a_container_submission_whose_registry_is_down_is_loaded_from_its_archive(
    participant, competition, runner, predict_archive, settings, tmp_path
):
    settings.HELDOUT_IMAGE_REGISTRY = f"127.0.0.1:{free_port()}/heldout"
    make_container_phase(competition, files=FILES)
    submission = submit_archive(competition, participant, predict_archive)

    try:
        inference_run(submission=submission, runner=runner, workdir=tmp_path)
        submission.refresh_from_db()
        assert submission.container_image_pushed == ""  # not pushed; nothing lost
        assert (tmp_path / "inference-output" / "predictions.csv").exists()
    finally:
        with suppress(docker.errors.ImageNotFound):
            runner.client.images.remove(submission.container_image)


@pytest.mark.docker
def test_a_build_context_from_a_platform_image_named_by_digest_pulls_that_base(
    participant, competition, runner, docker_client, pushed_scorer, settings, tmp_path
):
    settings.HELDOUT_SCORER_IMAGES = [pushed_scorer]
    make_container_phase(competition, files=FILES)
    phase = competition.phases.get()
    phase.allow_build_context = True
    phase.save()
    untag(docker_client, pushed_scorer)  # as on a host that never scored with it
    dockerfile = (
        f'FROM {pushed_scorer}\nCOPY run.py /app/\nWORKDIR /app\nCMD ["python", "run.py"]\n'
    )
    context = tmp_path / "context.tar.gz"
    context.write_bytes(
        h.tar_bytes(
            [
                h.file_entry("Dockerfile", dockerfile.encode()),
                h.file_entry("run.py", h.PREDICT_ONLY.encode()),
            ],
            gz=True,
        )
    )
    submission = submit_archive(competition, participant, context)

    try:
        assert submission_score(
            submission_id=submission.pk, runner=runner, scorer=InProcessScorer(max_problems=10)
        )
        submission.refresh_from_db()
        assert submission.status == Submission.Status.SCORED, submission.error_message
        assert docker_client.images.get(pushed_scorer).id
    finally:
        with suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(Submission.objects.get(pk=submission.pk).container_image)
