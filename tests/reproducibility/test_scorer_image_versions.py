"""A rebuilt scorer image makes a new task version: no score claims an image that did not make it."""

import pytest

from competitions.models import Score, Submission, TaskVersion
from competitions.services.submissions import submission_create
from competitions.services.versions import task_version_ensure
from scoring.sandbox import DockerRunner
from scoring.services import submission_score
from tests import factories

pytestmark = [pytest.mark.docker, pytest.mark.django_db]


@pytest.fixture
def docker_settings(settings, scorer_image):
    settings.HELDOUT_SCORER = "docker"
    settings.HELDOUT_SCORER_IMAGE = scorer_image
    settings.HELDOUT_SCORER_IMAGES = [scorer_image]
    return settings


def _scored(competition, user, runner) -> Submission:
    submission = submission_create(
        competition=competition,
        user=user,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    submission_score(submission_id=submission.pk, runner=runner)
    submission.refresh_from_db()
    assert submission.status == Submission.Status.SCORED, submission.error_message
    return submission


def test_scores_stay_in_the_ranked_version_while_the_image_is_the_same(
    docker_settings, docker_client, competition, participant
):
    task = competition.task
    task_version_ensure(task=task)

    submission = _scored(competition, participant, DockerRunner(docker_client))

    task.refresh_from_db()
    assert task.version == 1
    assert Score.objects.filter(submission=submission, task_version=1).count() == 4


def test_a_rebuilt_scorer_image_starts_a_new_version_and_rescores_the_rest(
    docker_settings,
    docker_client,
    scorer_image,
    competition,
    participant,
    other_participant,
    django_capture_on_commit_callbacks,
):
    task = competition.task
    runner = DockerRunner(docker_client)
    first = _scored(competition, participant, runner)
    # Version 1 was made with an image that is gone: the image was rebuilt since.
    task_version_ensure(task=task)
    TaskVersion.objects.filter(task=task, number=1).update(scorer_image_digest="sha256:" + "0" * 64)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        second = _scored(competition, other_participant, runner)

    task.refresh_from_db()
    assert task.version == 2
    new = TaskVersion.objects.get(task=task, number=2)
    assert new.scorer_image_digest == docker_client.images.get(scorer_image).id
    assert new.note == "scorer image changed"
    assert Score.objects.filter(submission=second, task_version=2).count() == 4
    assert not Score.objects.filter(submission=second, task_version=1).exists()
    # The earlier submission keeps its version-1 scores and is queued for version 2.
    assert Score.objects.filter(submission=first, task_version=1).count() == 4
    first.refresh_from_db()
    assert first.status == Submission.Status.QUEUED
    assert len(queued) == 2  # the second's own job, and the first's rescoring


def test_a_finalized_competition_keeps_its_version(
    docker_settings, docker_client, competition, participant
):
    from django.utils import timezone

    task = competition.task
    task_version_ensure(task=task)
    TaskVersion.objects.filter(task=task, number=1).update(scorer_image_digest="sha256:" + "0" * 64)
    # Accepted before finalize (uploads are refused after it), scored after it.
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    competition.finalized_at = timezone.now()
    competition.save()

    submission_score(submission_id=submission.pk, runner=DockerRunner(docker_client))

    submission.refresh_from_db()
    assert submission.status == Submission.Status.SCORED, submission.error_message
    task.refresh_from_db()
    assert task.version == 1
