"""A scorer is identified by its content, the same on every host: workers never make task
versions, a worker whose scorer differs leaves its jobs to a matching one, and only an
organizer adopts a new scorer (docs/scorers.md)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator

import docker
import pytest
from django.core.files.base import ContentFile

from competitions.models import (
    Attempt,
    ScorerMismatchReport,
    ScoringRun,
    Submission,
    TaskVersion,
)
from competitions.services.submissions import enqueue_on_commit
from competitions.services.versions import task_version_ensure
from scoring.image_identity import SCORER_CONTENT_LABEL, scorer_identity_of
from scoring.sandbox_docker import DockerRunner
from tests import factories
from tests.worker_process import worker_process

# Every image this run of these tests makes carries this label and a tag of its own, so another
# run on a shared engine neither collides with them nor has its images removed by this one.
RUN = uuid.uuid4().hex[:8]
TEST_LABEL = f"heldout.test=scorerid-{RUN}"
OTHER_CONTENT = "sha256:" + "1" * 64


def _commit(client: docker.DockerClient, image: str, tag: str, *changes: str) -> str:
    """A new local image from `image`: the same content under a new image id."""
    container = client.containers.create(image, command=["true"])
    try:
        client.api.commit(
            container.id,
            repository="heldout-scorerid-test",
            tag=f"{tag}-{RUN}",
            changes=[f"LABEL {TEST_LABEL}", *changes],
        )
    finally:
        container.remove(force=True)
    return f"heldout-scorerid-test:{tag}-{RUN}"


@pytest.fixture(scope="module")
def twin_images(docker_client, scorer_image) -> Iterator[dict[str, str]]:
    """Two builds of the platform's scorer (same content, own image ids), one other scorer
    and an image without the content label."""
    base = docker_client.images.get(scorer_image)
    images = {
        "a": _commit(docker_client, scorer_image, "twin-a"),
        "b": _commit(docker_client, scorer_image, "twin-b"),
        "other": _commit(
            docker_client, scorer_image, "other", f"LABEL {SCORER_CONTENT_LABEL}={OTHER_CONTENT}"
        ),
        "unlabelled": _commit(
            docker_client, scorer_image, "unlabelled", f"LABEL {SCORER_CONTENT_LABEL}="
        ),
        "unlabelled-again": _commit(
            docker_client, scorer_image, "unlabelled-again", f"LABEL {SCORER_CONTENT_LABEL}="
        ),
        "unlabelled-env": _commit(
            docker_client,
            scorer_image,
            "unlabelled-env",
            f"LABEL {SCORER_CONTENT_LABEL}=",
            "ENV EXTRA=1",
        ),
    }
    images["content"] = base.labels[SCORER_CONTENT_LABEL]
    yield images
    for image in docker_client.images.list(filters={"label": TEST_LABEL}):
        docker_client.images.remove(image.id, force=True)


# --- The identity function, on the real engine --------------------------------------


@pytest.mark.docker
def test_the_identity_of_two_local_builds_of_one_scorer_is_their_content_label(
    docker_client, twin_images
):
    runner = DockerRunner(docker_client)
    a, b = twin_images["a"], twin_images["b"]

    assert runner.image_digest(a) != runner.image_digest(b)
    assert runner.scorer_identity(a) == runner.scorer_identity(b) == twin_images["content"]
    assert twin_images["content"].startswith("sha256:")
    assert len(twin_images["content"]) == 71
    assert runner.scorer_identity(twin_images["other"]) == OTHER_CONTENT


@pytest.mark.docker
def test_without_a_label_the_registry_digest_identifies_the_scorer(docker_client, twin_images):
    # No registry runs here: the engine's own attributes of an unlabelled image, as a pull
    # would leave them (RepoDigests filled in).
    attrs = docker_client.images.get(twin_images["unlabelled"]).attrs
    assert not attrs["RepoDigests"]
    pulled = {**attrs, "RepoDigests": ["registry.example/scorer@sha256:" + "ab" * 32]}

    assert scorer_identity_of(pulled) == "sha256:" + "ab" * 32


@pytest.mark.docker
def test_without_label_or_registry_digest_layers_and_behaviour_identify_the_scorer(
    docker_client, twin_images
):
    runner = DockerRunner(docker_client)
    one, again = twin_images["unlabelled"], twin_images["unlabelled-again"]

    identity = runner.scorer_identity(one)
    assert runner.image_digest(one) != runner.image_digest(again)
    assert identity == runner.scorer_identity(again)
    assert identity not in (runner.image_digest(one), twin_images["content"])
    assert identity.startswith("sha256:")
    # A change to the environment changes what the scorer does: another identity.
    assert runner.scorer_identity(twin_images["unlabelled-env"]) != identity


# --- Real workers ---------------------------------------------------------------------


# A scoring program that needs only the standard library: a container run then takes about
# half a second, where the built-in scorer spends seconds importing pandas and scikit-learn
# (50 of those would take minutes on a busy machine). It still runs in the worker's scorer
# image, whose identity is what these tests are about.
QUICK_PROGRAM = b"""
import csv, json
def rows(path):
    with open(path, newline="") as f:
        return {row["id"]: row for row in csv.DictReader(f)}
truth, predictions = rows("/input/truth"), rows("/input/predictions")
scores = {}
for split in ("public", "private"):
    ids = [i for i, row in truth.items() if row["Usage"].lower() == split]
    right = sum((float(predictions[i]["label"]) >= 0.5) == (truth[i]["label"] == "1") for i in ids)
    scores[split] = {"roc_auc": right / len(ids), "accuracy": right / len(ids)}
with open("/output/scores.json", "w") as out:
    json.dump(scores, out)
"""


def _quick_competition(organizer):
    competition = factories.make_competition(organizers=[organizer], daily_limit=100)
    task = competition.task
    task.scorer_program.save("score.py", ContentFile(QUICK_PROGRAM), save=False)
    task.scorer_program_sha256 = hashlib.sha256(QUICK_PROGRAM).hexdigest()
    task.save()
    return competition


def _queued(competition, count: int, teams: int = 5) -> list[int]:
    """`count` queued submissions of perfect predictions, spread over `teams` teams, each
    sent to the queue."""
    made = [factories.team_for(competition, f"team{i}") for i in range(teams)]
    ids = []
    for i in range(count):
        submission = factories.submission_row(made[i % teams])
        submission.file.save(f"p{i}.csv", ContentFile(factories.perfect_predictions()), save=False)
        submission.save()
        enqueue_on_commit(submission.pk)  # sent at once: these tests run in autocommit
        ids.append(submission.pk)
    return ids


def _wait(condition, what: str, logs, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    tails = "\n".join(f"--- {log}\n{log.read_text()[-2000:]}" for log in logs)
    pytest.fail(f"timed out waiting for {what}\n{tails}")


def _worker_env(image: str) -> dict[str, str]:
    return {
        "HELDOUT_SCORER": "docker",
        "HELDOUT_SCORER_IMAGE": image,
        "HELDOUT_SCORER_IMAGES": image,
        "HELDOUT_SCORER_MISMATCH_RETRY_S": "1",
    }


@pytest.mark.docker
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_two_workers_with_local_builds_of_one_scorer_score_fifty_submissions_in_one_version(
    tmp_path, organizer, twin_images
):
    competition = _quick_competition(organizer)
    ids = _queued(competition, 50)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    a, b = twin_images["a"], twin_images["b"]

    with worker_process(logs[0], _worker_env(a)), worker_process(logs[1], _worker_env(b)):
        _wait(
            lambda: Submission.objects.filter(pk__in=ids, status="scored").count() == 50,
            "50 scored submissions",
            logs,
            timeout=240,  # about 1 s each on two quiet cores; what is tested is the version
        )

    versions = TaskVersion.objects.filter(task=competition.task)
    assert [(v.number, v.scorer_image_digest) for v in versions] == [(1, twin_images["content"])]
    competition.task.refresh_from_db()
    assert competition.task.version == 1
    manifests = [run.manifest["scorer"] for run in ScoringRun.objects.filter(submission__in=ids)]
    assert len(manifests) == 50
    assert {m["identity"] for m in manifests} == {twin_images["content"]}
    assert {m["image"] for m in manifests} == {a, b}  # both workers scored
    assert not ScorerMismatchReport.objects.exists()


@pytest.mark.docker
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_with_another_scorer_leaves_its_jobs_to_a_matching_worker(
    tmp_path, organizer, twin_images
):
    competition = _quick_competition(organizer)
    task = competition.task
    TaskVersion.objects.filter(pk=task_version_ensure(task=task).pk).update(
        scorer_image_digest=twin_images["content"]
    )
    ids = _queued(competition, 3, teams=3)
    other_log, matching_log = tmp_path / "other.log", tmp_path / "matching.log"

    with worker_process(other_log, _worker_env(twin_images["other"])):
        _wait(
            lambda: sum(ScorerMismatchReport.objects.values_list("count", flat=True)) >= 6,
            "the other worker to leave each job (twice)",
            [other_log],
        )
        # Nothing scored, nothing counted against the submissions (each claim given
        # back), no version made.
        assert set(Submission.objects.filter(pk__in=ids).values_list("status", flat=True)) <= {
            "queued",
            "running",
        }
        left = Attempt.objects.filter(submission_id__in=ids).values_list("outcome", flat=True)
        assert set(left) <= {"returned", "running"}
        assert not ScoringRun.objects.filter(submission__in=ids).exists()
        assert TaskVersion.objects.filter(task=task).count() == 1
        report = ScorerMismatchReport.objects.get()
        assert (report.identity, report.expected, report.version) == (
            OTHER_CONTENT,
            twin_images["content"],
            1,
        )
        assert (
            f"scorer identity {OTHER_CONTENT} differs from task v1's {twin_images['content']}; "
            "leaving submission #"
        ) in other_log.read_text()

        with worker_process(matching_log, _worker_env(twin_images["a"])):
            _wait(
                lambda: Submission.objects.filter(pk__in=ids, status="scored").count() == 3,
                "the matching worker to score them",
                [other_log, matching_log],
            )

    ended = Attempt.objects.filter(submission_id__in=ids).exclude(outcome="returned")
    assert sorted(ended.values_list("submission_id", "outcome")) == sorted(
        (pk, "scored") for pk in ids
    )
    manifests = [run.manifest["scorer"] for run in ScoringRun.objects.filter(submission__in=ids)]
    assert [(m["identity"], m["image"]) for m in manifests] == [
        (twin_images["content"], twin_images["a"])
    ] * 3
    assert TaskVersion.objects.filter(task=task).count() == 1
