"""Resumable uploads (tus 1.0) at /api/v1/uploads/, and submissions made from them.

Protocol behaviour through the test client; the live-server tests (a connection cut at
50 %, slow clients against gunicorn) are in tests/test_uploads_live.py.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta

import pytest
from django.utils import timezone

from competitions.models import Submission, Upload
from competitions.services.uploads import uploads_delete_expired
from tests import factories

pytestmark = pytest.mark.django_db

TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}
OFFSET_TYPE = "application/offset+octet-stream"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def create(client, length: int, *, filename="predictions.csv", competition="tiny", **headers):
    metadata = f"filename {_b64(filename)}"
    if competition:
        metadata += f",competition {_b64(competition)}"
    return client.post(
        "/api/v1/uploads/",
        **TUS,
        HTTP_UPLOAD_LENGTH=str(length),
        HTTP_UPLOAD_METADATA=metadata,
        **headers,
    )


def patch(client, url: str, data: bytes, offset: int):
    return client.generic(
        "PATCH", url, data, content_type=OFFSET_TYPE, HTTP_UPLOAD_OFFSET=str(offset), **TUS
    )


def head(client, url: str):
    return client.head(url, **TUS)


def uploaded(client, content: bytes, **kwargs) -> str:
    """The URL of a complete upload of `content`, sent in two pieces."""
    url = create(client, len(content), **kwargs)["Location"]
    half = len(content) // 2
    assert patch(client, url, content[:half], 0).status_code == 204
    assert patch(client, url, content[half:], half).status_code == 204
    return url


def test_it_tells_the_protocol_version_extensions_and_largest_size_without_signing_in(api):
    response = api(None).options("/api/v1/uploads/")

    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert set(response["Tus-Extension"].split(",")) == {"creation", "termination", "expiration"}
    assert int(response["Tus-Max-Size"]) > 0


def test_it_creates_an_upload_and_appends_pieces_at_the_offset_it_reports(
    api, competition, participant
):
    client = api(participant)
    content = factories.perfect_predictions()

    created = create(client, len(content))
    assert created.status_code == 201
    assert created["Tus-Resumable"] == "1.0.0"
    url = created["Location"]
    assert url.startswith("http://testserver/api/v1/uploads/")
    assert created.json()["offset"] == 0
    assert created.json()["competition"] == "tiny"
    assert head(client, url)["Upload-Offset"] == "0"

    first = patch(client, url, content[:10], 0)
    assert first.status_code == 204
    assert first["Upload-Offset"] == "10"
    reported = head(client, url)
    assert reported.status_code == 200
    assert reported["Upload-Offset"] == "10"
    assert reported["Upload-Length"] == str(len(content))
    assert reported["Cache-Control"] == "no-store"
    assert "filename " + _b64("predictions.csv") in reported["Upload-Metadata"]

    last = patch(client, url, content[10:], 10)
    assert last["Upload-Offset"] == str(len(content))
    body = client.get(url, **TUS).json()
    assert body["complete"] is True
    assert body["sha256"] == hashlib.sha256(content).hexdigest()


def test_it_refuses_a_piece_at_another_offset_with_409_and_the_offset_it_has(
    api, competition, participant
):
    client = api(participant)
    url = create(client, 100)["Location"]
    assert patch(client, url, b"x" * 40, 0).status_code == 204

    for wrong in (0, 39, 41):
        response = patch(client, url, b"y" * 10, wrong)
        assert response.status_code == 409
        assert response.json()["code"] == "offset_mismatch"
        assert response.json()["offset"] == 40
    assert head(client, url)["Upload-Offset"] == "40"


def test_it_refuses_bytes_past_the_declared_length_and_uploads_over_the_limit_with_413(
    api, competition, participant, settings
):
    client = api(participant)
    url = create(client, 10)["Location"]
    response = patch(client, url, b"z" * 11, 0)
    assert response.status_code == 413
    assert head(client, url)["Upload-Offset"] == "0"

    settings.HELDOUT_MAX_UPLOAD_BYTES = 1000
    settings.HELDOUT_MAX_IMAGE_BYTES = 1000
    too_big = create(client, 1001)
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "file_too_large"
    assert create(client, 1000).status_code == 201


def test_it_requires_the_tus_version_header_and_the_offset_media_type(
    api, competition, participant
):
    client = api(participant)
    response = client.post("/api/v1/uploads/", HTTP_UPLOAD_LENGTH="5")
    assert response.status_code == 412
    assert response["Tus-Version"] == "1.0.0"

    url = create(client, 5)["Location"]
    wrong_type = client.generic(
        "PATCH", url, b"abcde", content_type="text/plain", HTTP_UPLOAD_OFFSET="0", **TUS
    )
    assert wrong_type.status_code == 415
    no_length = client.post("/api/v1/uploads/", **TUS)
    assert no_length.status_code == 400


def test_an_upload_is_its_owners_alone(
    api, competition, participant, other_participant, outsider, organizer, other_organizer
):
    url = create(api(participant), 20)["Location"]

    for user in (other_participant, outsider, organizer, other_organizer):
        client = api(user)
        assert head(client, url).status_code == 404
        assert client.get(url, **TUS).status_code == 404
        assert patch(client, url, b"a" * 5, 0).status_code == 404
        assert client.delete(url, **TUS).status_code == 404
    assert api(None).get(url, **TUS).status_code == 401
    assert api(None).post("/api/v1/uploads/", **TUS, HTTP_UPLOAD_LENGTH="5").status_code == 401
    assert head(api(participant), url)["Upload-Offset"] == "0"


def test_an_upload_for_a_competition_the_user_may_not_see_is_refused(
    api, competition, other_competition, participant
):
    other_competition.visibility = "invite_only"
    other_competition.save()
    response = create(api(participant), 10, competition="other")
    assert response.status_code == 404
    assert not Upload.objects.exists()


def test_terminating_an_upload_removes_it_and_its_bytes(api, competition, participant):
    client = api(participant)
    url = create(client, 20)["Location"]
    patch(client, url, b"b" * 8, 0)
    path = Upload.objects.get().file.path
    assert os.path.getsize(path) == 8

    response = client.delete(url, **TUS)

    assert response.status_code == 204
    assert head(client, url).status_code == 404
    assert not os.path.exists(path)


def test_expired_uploads_are_deleted_with_their_bytes_and_are_gone_before(
    api, competition, participant
):
    client = api(participant)
    old_url = create(client, 20)["Location"]
    keep_url = create(client, 20)["Location"]
    old = Upload.objects.get(pk=old_url.rstrip("/").rsplit("/", 1)[-1])
    Upload.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert head(client, old_url).status_code == 404
    assert uploads_delete_expired() == 1
    assert not os.path.exists(old.file.path)
    assert head(client, keep_url).status_code == 200


def test_a_complete_upload_becomes_a_submission_once(
    api, competition, participant, django_capture_on_commit_callbacks
):
    client = api(participant)
    content = factories.perfect_predictions()
    url = uploaded(client, content, filename="my preds.csv")
    part_path = Upload.objects.get().file.path

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            "/api/v1/competitions/tiny/submissions/",
            {"upload": url, "method_name": "resumed"},
            format="json",
        )

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["size"] == len(content)
    assert body["file_name"] == "my_preds.csv"
    submission = Submission.objects.get()
    assert submission.method_name == "resumed"
    assert submission.file.read() == content
    assert not os.path.exists(part_path)
    assert not Upload.objects.exists()
    again = client.post("/api/v1/competitions/tiny/submissions/", {"upload": url}, format="json")
    assert again.status_code == 404


def test_a_submission_needs_a_complete_upload_of_ones_own(
    api, competition, participant, other_participant
):
    client = api(participant)
    url = create(client, 100)["Location"]
    patch(client, url, b"id,label\n", 0)
    submit = "/api/v1/competitions/tiny/submissions/"

    incomplete = client.post(submit, {"upload": url}, format="json")
    assert incomplete.status_code == 409
    assert incomplete.json()["code"] == "upload_incomplete"
    theirs = api(other_participant).post(submit, {"upload": url}, format="json")
    assert theirs.status_code == 404
    neither = client.post(submit, {"method_name": "x"}, format="json")
    assert neither.status_code == 400
    assert not Submission.objects.exists()


def test_the_scheduler_runs_the_expiry_task_which_celery_knows(
    api, competition, participant, settings
):
    from config.celery_app import app

    entry = settings.CELERY_BEAT_SCHEDULE["delete-expired-uploads"]
    app.loader.import_default_modules()
    task = app.tasks[entry["task"]]
    url = create(api(participant), 20)["Location"]
    Upload.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    assert task.run() == 1
    assert head(api(participant), url).status_code == 404
    assert not Upload.objects.exists()


def test_the_submit_page_takes_an_upload_of_ones_own_instead_of_a_file(
    api, client, competition, participant, other_participant, django_capture_on_commit_callbacks
):
    content = factories.perfect_predictions()
    url = uploaded(api(participant), content)
    upload_id = url.rstrip("/").rsplit("/", 1)[-1]

    client.force_login(other_participant)
    theirs = client.post("/c/tiny/submit/", {"upload": upload_id}, HTTP_ACCEPT="application/json")
    assert theirs.status_code == 400
    assert "upload is gone" in theirs.json()["detail"]

    client.force_login(participant)
    nothing = client.post("/c/tiny/submit/", {"method_name": "x"})
    assert nothing.status_code == 400
    assert "Choose a file" in nothing.content.decode()
    with django_capture_on_commit_callbacks(execute=False):
        mine = client.post(
            "/c/tiny/submit/",
            {"upload": upload_id, "method_name": "paged"},
            HTTP_ACCEPT="application/json",
        )
    assert mine.status_code == 202, mine.content
    submission = Submission.objects.get(pk=mine.json()["id"])
    assert submission.sha256 == hashlib.sha256(content).hexdigest()
    assert submission.method_name == "paged"


def test_an_upload_for_a_phase_taking_images_may_be_as_large_as_an_image(
    api, competition, participant, settings
):
    settings.HELDOUT_MAX_UPLOAD_BYTES = 100
    settings.HELDOUT_MAX_IMAGE_BYTES = 1000
    client = api(participant)
    assert create(client, 500).status_code == 413
    competition.phases.update(submission_kind="container")

    assert create(client, 500).status_code == 201
    assert create(client, 500, competition=None).status_code == 413
    assert create(client, 1001).status_code == 413


def test_the_sha256_is_right_when_pieces_were_written_by_different_processes(
    api, competition, participant
):
    from competitions.services.uploads import _hashes

    client = api(participant)
    content = bytes(range(256)) * 40
    url = create(client, len(content))["Location"]
    patch(client, url, content[:1000], 0)
    _hashes.forget_all()  # as if the next piece reached another gunicorn worker
    patch(client, url, content[1000:3000], 1000)
    patch(client, url, content[3000:], 3000)

    assert client.get(url, **TUS).json()["sha256"] == hashlib.sha256(content).hexdigest()


def test_a_second_writer_gets_423_until_the_first_ones_lock_goes_stale(
    api, competition, participant
):
    client = api(participant)
    url = create(client, 20)["Location"]
    writing = Upload.objects.filter(pk=url.rstrip("/").rsplit("/", 1)[-1])
    writing.update(locked_at=timezone.now())

    busy = patch(client, url, b"c" * 5, 0)
    assert busy.status_code == 423
    assert busy.json()["code"] == "upload_locked"
    assert head(client, url)["Upload-Offset"] == "0"

    writing.update(locked_at=timezone.now() - timedelta(minutes=2))  # its writer died
    assert patch(client, url, b"c" * 5, 0).status_code == 204
    assert writing.get().locked_at is None
