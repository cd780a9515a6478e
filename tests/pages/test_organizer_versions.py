"""Organizers replace the ground truth from the Data page and choose the ranked version."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from competitions.models import OutboxMessage, Score, Submission, TaskVersion
from competitions.services.submissions import submission_create
from judging.services import submission_score
from tests import factories
from tests.jobs import run_queued_jobs

pytestmark = pytest.mark.django_db


def _truth_upload(flip: bool = False) -> SimpleUploadedFile:
    rows = [(i, ("0" if y == "1" else "1") if flip else y, u) for i, y, u in factories.TRUTH_ROWS]
    text = "id,label,Usage\n" + "".join(f"{i},{y},{u}\n" for i, y, u in rows)
    return SimpleUploadedFile("truth.csv", text.encode(), content_type="text/csv")


def test_an_organizer_records_a_new_ground_truth_without_switching(client, organizer, competition):
    client.force_login(organizer)

    response = client.post(
        f"/c/{competition.slug}/organize/versions/",
        {"ground_truth": _truth_upload(flip=True), "note": "relabelled"},
    )

    assert response.status_code == 302
    competition.task.refresh_from_db()
    assert competition.task.version == 1
    assert TaskVersion.objects.get(task=competition.task, number=2).note == "relabelled"
    page = client.get(f"/c/{competition.slug}/organize/data/").content.decode()
    assert "relabelled" in page
    assert "Rank by v2" in page


def test_switching_versions_rescores_and_keeps_the_old_scores(
    client, settings, organizer, participant, competition, django_capture_on_commit_callbacks
):
    settings.HELDOUT_SCORER = "in-process"
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    submission_score(submission_id=submission.pk)
    client.force_login(organizer)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(
            f"/c/{competition.slug}/organize/versions/",
            {"ground_truth": _truth_upload(flip=True), "note": "fixed labels", "activate": "on"},
            follow=True,
        )
    assert len(queued) == 1  # the version switch job
    competition.task.refresh_from_db()
    assert competition.task.version == 1  # until a worker runs the job
    assert 'http-equiv="refresh"' in response.content.decode()

    sent_before = set(OutboxMessage.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=False):
        (job,) = run_queued_jobs()

    assert job.status == "done", job.message
    competition.task.refresh_from_db()
    assert competition.task.version == 2
    # The rescore of the one submission, the refresh of the board's intervals, and the new
    # version's reference rows.
    tasks = sorted(OutboxMessage.objects.exclude(pk__in=sent_before).values_list("task", "args"))
    assert tasks == [
        ("competitions.tasks.leaderboard_intervals_task", [competition.pk]),
        ("judging.tasks.references_compute_task", [competition.pk]),
        ("scoring.tasks.submission_score_task", [submission.pk]),
    ]
    submission.refresh_from_db()
    assert submission.status == Submission.Status.QUEUED
    assert Score.objects.filter(submission=submission, task_version=1).count() == 4


def test_a_bad_ground_truth_is_refused_with_a_message(client, organizer, competition):
    client.force_login(organizer)
    bad = SimpleUploadedFile("truth.csv", b"id,wrong\nid0,1\n", content_type="text/csv")

    response = client.post(
        f"/c/{competition.slug}/organize/versions/", {"ground_truth": bad}, follow=True
    )

    assert not TaskVersion.objects.filter(task=competition.task, number=2).exists()
    errors = [str(m) for m in response.context["messages"] if m.level_tag == "error"]
    assert len(errors) == 1
    assert "label" in errors[0]


@pytest.mark.parametrize(
    "persona", ["participant", "other_participant", "outsider", "other_organizer"]
)
def test_nobody_else_can_replace_the_ground_truth(request, client, competition, persona):
    if persona == "other_organizer":
        request.getfixturevalue("other_competition")
    client.force_login(request.getfixturevalue(persona))

    response = client.post(
        f"/c/{competition.slug}/organize/versions/", {"ground_truth": _truth_upload()}
    )
    activate = client.post(f"/c/{competition.slug}/organize/versions/1/activate/")

    assert response.status_code == 403
    assert activate.status_code == 403
    assert not TaskVersion.objects.filter(task=competition.task, number=2).exists()
