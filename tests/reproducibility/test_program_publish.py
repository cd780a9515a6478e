"""Making a scoring program public: the same bytes again only flip the flag (no dry run, no
re-upload, no new task version, no rescore); anything else is a new program."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from competitions.errors import FinalizedError
from competitions.models import Competition, OrganizerJob, Submission, TaskVersion
from competitions.services.scorers import task_scorer_dry_run, task_scorer_set
from competitions.services.submissions import submission_create
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from tests import factories

pytestmark = pytest.mark.django_db

PROGRAM = b"# the organizers' scoring program\nimport json\n"


class DryRunAttempted(Exception):
    pass


class _NoRunner:
    """A sandbox that fails the test if anything is run in it."""

    def run(self, **kwargs):
        raise DryRunAttempted


@pytest.fixture
def with_program(settings, competition, participant):
    """A task scored under version 1 by its private program (recorded in the version)."""
    settings.HELDOUT_SCORER_IMAGES = [settings.HELDOUT_SCORER_IMAGE]
    task = competition.task
    task.scorer_program.save("score.py", ContentFile(PROGRAM), save=False)
    task.scorer_program_sha256 = hashlib.sha256(PROGRAM).hexdigest()
    task.scorer_program_public = False
    task.scorer_image = settings.HELDOUT_SCORER_IMAGE
    task.scorer_dry_run = {"ok": True, "sample": "sample_submission.csv", "scores": {}}
    task.save()
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    assert TaskVersion.objects.get(task=task, number=1).scorer_program_sha256
    return task


def _upload(content: bytes = PROGRAM) -> SimpleUploadedFile:
    return SimpleUploadedFile("score.py", content, content_type="text/x-python")


def _state(task) -> tuple:
    task.refresh_from_db()
    statuses = list(Submission.objects.values_list("status", flat=True))
    return (task.version, TaskVersion.objects.filter(task=task).count(), statuses)


def test_publishing_the_same_bytes_only_flips_public(
    with_program, django_capture_on_commit_callbacks
):
    task = with_program
    stored_name = task.scorer_program.name
    before = _state(task)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        job = task_scorer_set(task=task, uploaded_file=_upload(), public=True)

    assert _state(task) == before == (1, 1, [Submission.Status.SCORED])
    assert task.scorer_program_public is True
    assert task.scorer_program.name == stored_name  # not stored again
    assert queued == []  # no rescore
    assert job is None  # no dry run
    assert not OrganizerJob.objects.exists()
    assert task.scorer_dry_run["ok"] is True


def test_the_same_bytes_can_make_the_program_private_again(with_program):
    task = with_program
    task_scorer_set(task=task, uploaded_file=_upload(), public=True)

    task_scorer_set(task=task, uploaded_file=_upload(), public=False)

    task.refresh_from_db()
    assert task.scorer_program_public is False
    assert task.version == 1


def test_an_organizer_publishes_the_same_program_over_the_api_without_a_new_version(
    api, organizer, competition, with_program
):
    response = api(organizer).post(
        f"/api/v1/competitions/{competition.slug}/scorer/",
        {"program": _upload(), "public": True},
        format="multipart",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["public"] is True
    assert response.json()["task_version"] == 1
    assert _state(with_program) == (1, 1, [Submission.Status.SCORED])


@pytest.mark.parametrize("persona", ["participant", "outsider", "other_organizer"])
def test_no_one_else_can_publish_the_program(request, api, competition, with_program, persona):
    if persona == "other_organizer":
        request.getfixturevalue("other_competition")
    user = request.getfixturevalue(persona)

    response = api(user).post(
        f"/api/v1/competitions/{competition.slug}/scorer/",
        {"program": _upload(), "public": True},
        format="multipart",
    )

    assert response.status_code in (403, 404)
    with_program.refresh_from_db()
    assert with_program.scorer_program_public is False


@pytest.mark.parametrize(
    "change",
    [{"content": PROGRAM + b"# one more line\n"}, {"image": "heldout-scorer:other"}],
    ids=["other bytes", "other image"],
)
def test_other_bytes_or_another_image_are_a_new_program_and_dry_run(settings, with_program, change):
    settings.HELDOUT_SCORER_IMAGES = [settings.HELDOUT_SCORER_IMAGE, "heldout-scorer:other"]
    task = with_program

    job = task_scorer_set(
        task=task,
        uploaded_file=_upload(change.get("content", PROGRAM)),
        image=change.get("image"),
        public=True,
    )
    assert job is not None
    assert job.kind == OrganizerJob.Kind.DRY_RUN
    with pytest.raises(DryRunAttempted):
        task_scorer_dry_run(job=job, runner=_NoRunner())

    task.refresh_from_db()
    assert task.scorer_program_public is False
    assert task.version == 1


def test_a_finalized_competition_may_publish_its_program_but_not_change_it(with_program):
    task = with_program
    Competition.objects.filter(pk=task.competition_id).update(finalized_at=timezone.now())
    task.refresh_from_db()

    task_scorer_set(task=task, uploaded_file=_upload(), public=True)
    with pytest.raises(FinalizedError, match="finalized"):
        task_scorer_set(task=task, uploaded_file=_upload(PROGRAM + b"\n"))

    task.refresh_from_db()
    assert task.scorer_program_public is True
    assert task.scorer_program_sha256 == hashlib.sha256(PROGRAM).hexdigest()
