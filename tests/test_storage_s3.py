"""The main flows with every stored file in a real S3-protocol server (moto's server mode on
loopback, tests/s3_server.py), and a real Celery worker on a "host" of its own: its data
folder is another, empty one, so it can only reach files through object storage."""

from __future__ import annotations

import base64
import io
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from competitions.models import Submission, TaskVersion
from tests import factories
from tests.worker_process import wait_for_status, worker_process

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_host(on_s3, tmp_path):
    """A worker whose data folder is empty and not the web's: a host of its own."""
    host_dir = tmp_path / "worker-host"
    host_dir.mkdir()
    log = tmp_path / "worker.log"
    env = {**on_s3.env(), "HELDOUT_DATA_DIR": str(host_dir), "HELDOUT_WORK_DIR": str(host_dir)}
    with worker_process(log, extra_env=env) as proc:
        yield proc, log, host_dir


def _media_files(settings) -> set[Path]:
    files = Path(settings.DATA_DIR) / "files"
    return {p for p in files.rglob("*") if p.is_file()} if files.exists() else set()


@pytest.fixture
def new_media_files(on_s3, settings):
    """The files this test added to the web's media folder (earlier tests' stay there)."""
    before = _media_files(settings)
    return lambda: sorted(_media_files(settings) - before)


def _manifest_once_recorded(client, submission_id: int):
    # The worker records the manifest just after the scores.
    deadline = time.monotonic() + 30
    while True:
        manifest = client.get(f"/api/v1/submissions/{submission_id}/manifest/")
        if manifest.status_code != 404 or time.monotonic() > deadline:
            assert manifest.status_code == 200, manifest.content
            return manifest
        time.sleep(0.2)


def _joined_competition(api, organizer, participant):
    competition = factories.make_competition(organizers=[organizer])
    api(participant).post(f"/api/v1/competitions/{competition.slug}/join/", {"accept_rules": True})
    return competition


def test_a_submission_is_stored_in_the_bucket_scored_by_another_host_and_ranked(
    worker_host, on_s3, new_media_files, api, organizer, participant
):
    proc, log, host_dir = worker_host
    competition = _joined_competition(api, organizer, participant)
    response = api(participant).post(
        f"/api/v1/competitions/{competition.slug}/submissions/",
        {"file": factories.upload(factories.perfect_predictions()), "method_name": "oracle"},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    submission = Submission.objects.get(pk=response.json()["id"])

    assert submission.file.name in on_s3.keys(on_s3.private_bucket)
    assert new_media_files() == []
    assert wait_for_status(submission.pk, {"scored", "failed"}, proc, log) == "scored"
    board = api(None).get(f"/api/v1/competitions/{competition.slug}/leaderboard/").json()
    assert [(r["rank"], r["team"], r["score"]) for r in board["results"]] == [(1, "alice", 1.0)]
    # The worker's own folder holds nothing of the submission once the attempt is over;
    # a warm scorer keeps only its task's spec and ground truth, for the next submission.
    left = [p.relative_to(host_dir) for p in host_dir.rglob("*") if p.is_file()]
    kept = [p for p in left if "celery" not in p.name and not p.parts[0].startswith("warm-")]
    assert kept == []
    warm = sorted(p.name for p in left if p.parts[0].startswith("warm-"))
    assert warm in ([], ["spec.json", "truth"]), warm

    manifest = _manifest_once_recorded(api(participant), submission.pk)
    truth = on_s3.client().get_object(
        Bucket=on_s3.private_bucket, Key=competition.task.ground_truth.name
    )
    assert manifest.json()["ground_truth"]["size"] == truth["ContentLength"]
    bundle = api(participant).get(f"/api/v1/submissions/{submission.pk}/bundle/")
    assert bundle.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(b"".join(bundle.streaming_content))).namelist()
    assert "manifest.json" in names
    download = api(participant).get(f"/api/v1/submissions/{submission.pk}/file/")
    assert b"".join(download.streaming_content) == factories.perfect_predictions()
    assert new_media_files() == []


def test_a_download_redirects_to_a_presigned_url_of_the_bucket_when_enabled(
    on_s3, settings, api, organizer, participant
):
    settings.HELDOUT_STORAGE_PRESIGNED_DOWNLOADS = True
    competition = _joined_competition(api, organizer, participant)
    response = api(participant).get(
        f"/api/v1/competitions/{competition.slug}/files/sample_submission.csv"
    )

    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{on_s3.endpoint_url}/{on_s3.bucket}/")
    assert "X-Amz-Signature=" in location
    with urllib.request.urlopen(location, timeout=10) as fetched:
        assert fetched.read() == factories.predictions_csv()


def test_a_ground_truth_version_uploaded_over_the_api_is_stored_in_the_private_bucket(
    on_s3, new_media_files, api, organizer, participant
):
    competition = _joined_competition(api, organizer, participant)
    first, *rest = factories.TRUTH_ROWS
    rows = [(first[0], 1 - int(first[1]), first[2]), *rest]
    truth = ("id,label,Usage\n" + "".join(f"{i},{y},{u}\n" for i, y, u in rows)).encode()
    created = api(organizer).post(
        f"/api/v1/competitions/{competition.slug}/versions/",
        {"ground_truth": factories.upload(truth, "truth.csv"), "note": "fixed"},
        format="multipart",
    )

    assert created.status_code == 201, created.json()
    version = TaskVersion.objects.get(task=competition.task, number=2)
    assert version.ground_truth.name in on_s3.keys(on_s3.private_bucket), on_s3.keys(
        on_s3.private_bucket
    )
    stored = on_s3.client().get_object(Bucket=on_s3.private_bucket, Key=version.ground_truth.name)
    assert stored["Body"].read() == truth
    assert new_media_files() == []


def test_a_tus_upload_completed_into_a_submission_lands_in_the_bucket(
    worker_host, on_s3, new_media_files, api, organizer, participant
):
    proc, log, _ = worker_host
    competition = _joined_competition(api, organizer, participant)
    client = api(participant)
    content = factories.perfect_predictions()
    metadata = f"filename {base64.b64encode(b'predictions.csv').decode()}"
    created = client.post(
        "/api/v1/uploads/",
        HTTP_TUS_RESUMABLE="1.0.0",
        HTTP_UPLOAD_LENGTH=str(len(content)),
        HTTP_UPLOAD_METADATA=metadata,
    )
    url = created["Location"]
    for offset in (0, len(content) // 2):
        piece = content[offset : len(content) // 2] if offset == 0 else content[offset:]
        sent = client.generic(
            "PATCH",
            url,
            piece,
            content_type="application/offset+octet-stream",
            HTTP_UPLOAD_OFFSET=str(offset),
            HTTP_TUS_RESUMABLE="1.0.0",
        )
        assert sent.status_code == 204, sent.content
    response = client.post(
        f"/api/v1/competitions/{competition.slug}/submissions/", {"upload": url}, format="json"
    )

    assert response.status_code == 202, response.content
    submission = Submission.objects.get(pk=response.json()["id"])
    stored = on_s3.client().get_object(Bucket=on_s3.private_bucket, Key=submission.file.name)
    assert stored["Body"].read() == content
    # The staged bytes are gone from the web host once the submission holds them.
    assert new_media_files() == []
    assert wait_for_status(submission.pk, {"scored", "failed"}, proc, log) == "scored"


def test_on_the_file_system_a_download_is_streamed_even_with_presigned_downloads_on(
    settings, api, organizer, participant
):
    settings.HELDOUT_STORAGE_PRESIGNED_DOWNLOADS = True
    competition = _joined_competition(api, organizer, participant)
    response = api(participant).get(
        f"/api/v1/competitions/{competition.slug}/files/sample_submission.csv"
    )

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == factories.predictions_csv()
