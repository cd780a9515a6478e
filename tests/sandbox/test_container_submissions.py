"""Container submissions: the upload, the inference stage, the scores, the predictions
download, and the images' collection. Fakes for the service's logic; a real engine for
the end-to-end run, loading and collection."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
from pathlib import Path

import docker
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from competitions.models import SandboxRun, Submission, TaskFile
from competitions.services.submissions import submission_set_selected
from judging import inference
from judging.images import (
    FakeImages,
    LoadedImage,
    images_to_keep,
    submission_image_tag,
)
from judging.inference import inference_run
from judging.services import submission_score
from judging.tasks import images_gc_task
from scoring.sandbox import RunResult, SandboxError
from scoring.sandbox_fake import FakeCall, FakeRunner
from scoring.scorers import InProcessScorer
from tests import factories
from tests.sandbox import hostile_images as h
from tests.sandbox.hostile_setup import (
    TEST_CSV,
    make_container_phase,
    submit_archive,
    truth_probe,
)

RUNNABLE = h.layer({"app/run": b"#!/bin/sh\necho hi\n"})
ARCHIVE = h.legacy_archive(
    [RUNNABLE], config=h.image_config([RUNNABLE], Cmd=["python3", "run.py"], WorkingDir="/app")
)
IMAGE = LoadedImage(
    tag="heldout-submission:x",
    digest="sha256:" + "ab" * 32,
    size=123,
    command=["python3", "run.py"],
    working_dir="/app",
)


def url(competition) -> str:
    return f"/api/v1/competitions/{competition.slug}/submissions/"


@pytest.fixture
def container_competition(competition):
    return make_container_phase(competition, limits={"memory_mb": 256, "timeout_s": 30})


@pytest.fixture
def submission(container_competition, participant, tmp_path):
    archive = tmp_path / "image.tar"
    archive.write_bytes(ARCHIVE)
    return submit_archive(container_competition, participant, archive)


def write_predictions(call: FakeCall, content: bytes | None = None) -> None:
    rows = list(csv.DictReader(io.StringIO(call.host_path("/input/test/test.csv").read_text())))
    lines = ["id,label"] + [f"{r['id']},{1.0 if float(r['x']) > 0.5 else 0.0}" for r in rows]
    (call.output_dir / "predictions.csv").write_bytes(content or ("\n".join(lines) + "\n").encode())


def failed_run(**changes) -> RunResult:
    base = {
        "exit_code": 0,
        "timed_out": False,
        "oom_killed": False,
        "duration_s": 1.0,
        "peak_memory_bytes": 10,
        "log": "",
        "output_truncated": False,
        "image": IMAGE.tag,
        "image_digest": IMAGE.digest,
    }
    return RunResult(**{**base, **changes})


# --- Upload ----------------------------------------------------------------------------------


def test_a_container_phase_accepts_a_docker_save_archive(api, participant, container_competition):
    response = api(participant).post(
        url(container_competition), {"file": SimpleUploadedFile("image.tar", ARCHIVE)}
    )

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["kind"] == "container"
    assert body["status"] == "queued"
    submission = Submission.objects.get(pk=body["id"])
    assert submission.kind == "container"
    assert Path(submission.file.path).read_bytes() == ARCHIVE


def test_an_archive_spooled_to_disk_is_checked_too(api, participant, container_competition):
    big = h.legacy_archive(
        [RUNNABLE, h.layer({"weights.bin": bytes(3 * 1024**2)})],
        config=h.image_config([RUNNABLE, h.layer({"weights.bin": bytes(3 * 1024**2)})]),
    )
    assert len(big) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE

    response = api(participant).post(
        url(container_competition), {"file": SimpleUploadedFile("image.tar", big)}
    )

    assert response.status_code == 202, response.json()


def test_a_bad_archive_is_refused_at_upload_with_every_problem_and_stores_nothing(
    api, participant, container_competition
):
    hostile = h.legacy_archive(
        [RUNNABLE],
        extra=[h.file_entry("../../escape", b"x"), h.special_entry("dev/null")],
    )

    response = api(participant).post(
        url(container_competition), {"file": SimpleUploadedFile("image.tar", hostile)}
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_image"
    assert [p["code"] for p in body["problems"]] == ["path_escape", "special_file"]
    assert "'../../escape' points outside the archive" in body["problems"][0]["message"]
    assert not Submission.objects.exists()  # nothing stored, no quota used


def test_a_prediction_file_is_refused_on_a_container_phase(api, participant, container_competition):
    response = api(participant).post(
        url(container_competition),
        {"file": SimpleUploadedFile("predictions.csv", factories.perfect_predictions())},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_image"


def test_a_prediction_phase_still_takes_prediction_files(api, participant, competition):
    response = api(participant).post(
        url(competition),
        {"file": SimpleUploadedFile("predictions.csv", factories.perfect_predictions())},
    )

    assert response.status_code == 202
    assert response.json()["kind"] == "predictions"


# --- The predictions download ------------------------------------------------------------------


@pytest.fixture
def with_predictions(submission):
    submission.predictions.save("p.csv", ContentFile(b"id,label\nid0,0\n"))
    return submission


def predictions_url(submission) -> str:
    return f"/api/v1/submissions/{submission.pk}/file/?part=predictions"


@pytest.mark.parametrize("who", ["participant", "organizer"])
def test_the_team_and_the_organizers_download_the_predictions(api, with_predictions, who, request):
    response = api(request.getfixturevalue(who)).get(predictions_url(with_predictions))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"id,label\nid0,0\n"


@pytest.mark.parametrize("who", ["other_participant", "outsider", "other_organizer"])
def test_nobody_else_downloads_the_predictions(
    api, with_predictions, who, request, other_competition
):
    response = api(request.getfixturevalue(who)).get(predictions_url(with_predictions))

    assert response.status_code == 404


def test_predictions_not_made_yet_are_not_found(api, participant, submission):
    response = api(participant).get(predictions_url(submission))

    assert response.status_code == 404
    assert (
        api(participant).get(f"/api/v1/submissions/{submission.pk}/").json()["has_predictions"]
        is False
    )


# --- The inference stage, with fakes -----------------------------------------------------------


def test_inference_mounts_the_test_files_read_only_and_never_the_ground_truth(submission, tmp_path):
    runner = FakeRunner(behaviour=write_predictions)

    inference_run(submission=submission, runner=runner, workdir=tmp_path, images=FakeImages(IMAGE))

    (call,) = runner.calls
    assert [(m.target, m.read_only) for m in call.mounts] == [("/input/test/test.csv", True)]
    truth = Path(submission.competition.task.ground_truth.path).resolve()
    assert truth not in {m.source.resolve() for m in call.mounts}
    assert call.host_path("/input/test/test.csv").read_text() == TEST_CSV
    assert call.image == IMAGE.tag
    # The image's CMD, in its WORKDIR (the sandbox starts in /tmp).
    assert call.command == ["/bin/sh", "-c", 'cd "$0" && exec "$@"', "/app", "python3", "run.py"]
    assert call.labels == {"heldout.stage": "inference", "heldout.submission": str(submission.pk)}


def test_a_test_file_that_is_the_ground_truth_is_never_mounted(submission, tmp_path):
    task = submission.competition.task
    task.ground_truth_sha256 = hashlib.sha256(factories.truth_csv().encode()).hexdigest()
    task.save()
    leaked = TaskFile(task=task, kind=TaskFile.Kind.TEST, name="labels.csv")
    leaked.file.save("labels.csv", ContentFile(factories.truth_csv().encode()), save=False)
    leaked.sha256 = task.ground_truth_sha256
    leaked.save()
    runner = FakeRunner()

    with pytest.raises(ValueError, match=r"labels\.csv is the ground truth; it is never mounted"):
        inference_run(
            submission=submission, runner=runner, workdir=tmp_path, images=FakeImages(IMAGE)
        )

    assert runner.calls == []


def test_inference_without_test_files_gets_an_empty_input_folder(
    container_competition, participant, tmp_path
):
    container_competition.task.files.filter(kind="test").delete()
    archive = tmp_path / "image.tar"
    archive.write_bytes(ARCHIVE)
    submission = submit_archive(container_competition, participant, archive)
    runner = FakeRunner(
        behaviour=lambda call: (call.output_dir / "predictions.csv").write_text("x")
    )

    inference_run(submission=submission, runner=runner, workdir=tmp_path, images=FakeImages(IMAGE))

    (mount,) = runner.calls[0].mounts
    assert mount.target == "/input/test"
    assert list(mount.source.iterdir()) == []


def test_inference_runs_under_the_tasks_inference_limits(submission, tmp_path):
    runner = FakeRunner(behaviour=write_predictions)

    inference_run(submission=submission, runner=runner, workdir=tmp_path, images=FakeImages(IMAGE))

    limits = runner.calls[0].limits
    assert limits.memory_bytes == 256 * 1024**2
    assert limits.timeout_s == 30
    assert limits.pids == settings.HELDOUT_SANDBOX_PIDS  # not overridden: the default


def test_inference_refuses_unknown_limits(submission, tmp_path):
    task = submission.competition.task
    task.inference_limits = {"gpus": 4}
    task.save()

    with pytest.raises(ValueError, match="unknown sandbox limit 'gpus'"):
        inference_run(
            submission=submission, runner=FakeRunner(), workdir=tmp_path, images=FakeImages(IMAGE)
        )


def test_inference_keeps_the_predictions_and_records_the_image(submission, tmp_path):
    images = FakeImages(IMAGE)

    path = inference_run(
        submission=submission,
        runner=FakeRunner(behaviour=write_predictions),
        workdir=tmp_path,
        images=images,
    )

    assert path == tmp_path / "inference-output" / "predictions.csv"
    submission.refresh_from_db()
    assert submission.predictions.read() == path.read_bytes()
    assert (submission.container_image, submission.container_image_digest) == (
        IMAGE.tag,
        IMAGE.digest,
    )
    assert submission.container_image_size == 123
    ((tag, archive, digest),) = images.calls
    assert tag == submission_image_tag(submission_id=submission.pk, sha256=submission.sha256)
    # A copy from the storage in the attempt's work folder (workers share no disk with the web).
    assert archive.is_relative_to(tmp_path)
    assert archive.read_bytes() == submission.file.open("rb").read()
    assert digest == ""  # nothing recorded yet: any image under the tag must be reloaded


@pytest.mark.parametrize(
    ("run", "behaviour", "reason"),
    [
        (
            failed_run(),
            None,
            "your container finished without writing /output/predictions.csv; /output is empty",
        ),
        (
            failed_run(),
            lambda call: (call.output_dir / "preds.txt").write_text("1"),
            "your container finished without writing /output/predictions.csv; it wrote preds.txt",
        ),
        (
            failed_run(timed_out=True, exit_code=137),
            write_predictions,
            "your container exceeded time limit of 30 s",
        ),
        (
            failed_run(oom_killed=True, exit_code=137),
            None,
            "your container exceeded memory limit of 256 MiB",
        ),
        (
            failed_run(exit_code=3, log="loading model\nKeyError: 'weights'\n"),
            None,
            "your container exited with code 3: loading model\nKeyError: 'weights'",
        ),
    ],
)
def test_each_way_inference_fails_has_its_own_reason(submission, tmp_path, run, behaviour, reason):
    runner = FakeRunner(result=run, behaviour=behaviour)

    with pytest.raises(SandboxError) as failure:
        inference_run(
            submission=submission, runner=runner, workdir=tmp_path, images=FakeImages(IMAGE)
        )

    assert str(failure.value) == reason
    submission.refresh_from_db()
    assert not submission.predictions


def test_a_refused_archive_runs_nothing(submission, tmp_path):
    runner = FakeRunner()
    images = FakeImages(error=SandboxError("The image archive was refused: two images."))

    with pytest.raises(SandboxError, match="two images"):
        inference_run(submission=submission, runner=runner, workdir=tmp_path, images=images)

    assert runner.calls == []


# --- Through submission_score, with fakes ------------------------------------------------------


@pytest.fixture
def fake_images(monkeypatch):
    images = FakeImages(IMAGE)
    monkeypatch.setattr(inference, "_engine_images", lambda runner: images)
    return images


def test_a_container_submission_is_scored_from_its_predictions(submission, fake_images):
    runner = FakeRunner(behaviour=write_predictions)

    assert submission_score(submission_id=submission.pk, runner=runner, scorer=InProcessScorer())

    submission.refresh_from_db()
    assert submission.status == Submission.Status.SCORED
    scores = {(s.split, s.metric): s.value for s in submission.scores.all()}
    assert scores[("public", "roc_auc")] == 1.0
    assert scores[("private", "accuracy")] == 1.0
    (run,) = SandboxRun.objects.filter(submission=submission)
    assert run.stage == SandboxRun.Stage.INFERENCE
    assert run.image == IMAGE.tag


def test_predictions_in_the_wrong_format_are_reported_like_an_uploaded_file(
    submission, fake_images
):
    runner = FakeRunner(behaviour=lambda call: write_predictions(call, b"id,label\nid0,maybe\n"))

    submission_score(submission_id=submission.pk, runner=runner, scorer=InProcessScorer())

    submission.refresh_from_db()
    assert submission.status == Submission.Status.FAILED
    assert submission.failure == Submission.Failure.INVALID
    assert submission.total_problems > 0
    assert submission.predictions  # kept: the team can see what their container wrote


def test_an_inference_failure_is_the_submissions_with_its_log(submission, fake_images):
    run = failed_run(oom_killed=True, exit_code=137, log="allocating\n")

    submission_score(
        submission_id=submission.pk, runner=FakeRunner(result=run), scorer=InProcessScorer()
    )

    submission.refresh_from_db()
    assert submission.status == Submission.Status.FAILED
    assert submission.failure == Submission.Failure.ERROR
    assert submission.error_message == "Your container exceeded memory limit of 256 MiB"
    (recorded,) = SandboxRun.objects.filter(submission=submission)
    assert (recorded.stage, recorded.oom_killed, recorded.log) == (
        "inference",
        True,
        "allocating\n",
    )


def test_a_container_that_writes_no_predictions_fails_with_that_reason(submission, fake_images):
    submission_score(submission_id=submission.pk, runner=FakeRunner(), scorer=InProcessScorer())

    submission.refresh_from_db()
    assert submission.status == Submission.Status.FAILED
    assert submission.error_message == (
        "Your container finished without writing /output/predictions.csv; /output is empty"
    )


# --- Image collection policy -------------------------------------------------------------------


def test_the_policy_keeps_busy_selected_and_top_images_only(
    container_competition, participant, other_participant, fake_images, tmp_path
):
    def submit(user, name: str, probability: float) -> Submission:
        archive = tmp_path / f"{name}.tar"
        archive.write_bytes(ARCHIVE + name.encode())  # distinct sha256, one tag each
        submission = submit_archive(container_competition, user, archive)
        content = factories.predictions_csv(
            {i: (probability if y == "1" else 1 - probability) for i, y, _ in factories.TRUTH_ROWS}
        )
        runner = FakeRunner(behaviour=lambda call: write_predictions(call, content))
        submission_score(submission_id=submission.pk, runner=runner, scorer=InProcessScorer())
        submission.refresh_from_db()
        assert submission.status == Submission.Status.SCORED, submission.error_message
        return submission

    best = submit(participant, "best", 0.9)
    worse = submit(participant, "worse", 0.6)
    runner_up = submit(other_participant, "runner-up", 0.55)
    selected = submit(other_participant, "selected", 0.52)
    submission_set_selected(submission=selected, selected=True)
    waiting = submit_archive(container_competition, participant, tmp_path / "best.tar")

    def tag(s: Submission) -> str:
        return submission_image_tag(submission_id=s.pk, sha256=s.sha256)

    keep = images_to_keep(top_n=1)

    assert tag(best) in keep  # first on the board
    assert tag(selected) in keep
    assert tag(waiting) in keep  # queued: about to run
    assert tag(worse) not in keep
    assert tag(runner_up) not in keep  # second: beyond the top 1
    container_competition.replicate_top_n = 2
    container_competition.save()
    assert tag(runner_up) in images_to_keep(top_n=1)


def test_the_beat_schedule_sends_the_collection_task():
    entry = settings.CELERY_BEAT_SCHEDULE["collect-submission-images"]

    assert entry["task"] == images_gc_task.name
    assert entry["schedule"] == 3600.0


# --- A real engine ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def predict_archive(docker_client, scorer_image, tmp_path_factory) -> Path:
    base = h.slim_python_image(docker_client, scorer_image)
    tag = h.script_image(docker_client, base, "predict", h.PREDICT)
    return h.save_image(docker_client, tag, tmp_path_factory.mktemp("predict") / "predict.tar")


@pytest.fixture
def loaded_tags(docker_client):
    """Tags a test loads; removed afterwards."""
    tags: list[str] = []
    yield tags
    for tag in tags:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(tag)


@pytest.mark.docker
def test_a_container_submission_through_the_api_is_scored_and_never_sees_the_truth(
    api, participant, competition, runner, predict_archive, loaded_tags
):
    make_container_phase(
        competition, files={"test.csv": TEST_CSV.encode(), "probe.txt": truth_probe()}
    )
    response = api(participant).post(
        url(competition), {"file": SimpleUploadedFile("predict.tar", predict_archive.read_bytes())}
    )
    assert response.status_code == 202, response.json()
    submission_id = response.json()["id"]

    assert submission_score(submission_id=submission_id, runner=runner)

    submission = Submission.objects.get(pk=submission_id)
    loaded_tags.append(submission.container_image)
    assert submission.status == Submission.Status.SCORED, submission.error_message
    body = api(participant).get(f"/api/v1/submissions/{submission_id}/").json()
    assert body["scores"]["public"] == {"roc_auc": 1.0, "accuracy": 1.0}
    assert body["has_predictions"] is True
    inference_log = SandboxRun.objects.get(submission_id=submission_id, stage="inference").log
    assert "predicted 10 rows in /app" in inference_log
    assert "truth found: nowhere" in inference_log
    scanned = int(inference_log.split("scanned ")[1].split(" files")[0])
    assert scanned > 500  # the scan really read the image's files
    mounts = inference_log.split("mount points: ")[1].split("\n")[0].split()
    assert {m for m in mounts if m.startswith("/input")} == {
        "/input/test/probe.txt",
        "/input/test/test.csv",
    }
    assert "ground_truth" not in inference_log
    assert SandboxRun.objects.filter(submission_id=submission_id, stage="scoring").count() == 1
    download = api(participant).get(f"/api/v1/submissions/{submission_id}/file/?part=predictions")
    assert b"".join(download.streaming_content).startswith(b"id,label\r\nid0,0.0\r\n")
    assert (
        submission.container_image_digest == runner.client.images.get(submission.container_image).id
    )


@pytest.mark.docker
def test_a_build_context_through_the_api_is_built_offline_and_scored(
    api, participant, competition, runner, scorer_image, loaded_tags, settings
):
    settings.HELDOUT_SCORER_IMAGES = [scorer_image]
    make_container_phase(competition)
    phase = competition.phases.get()
    phase.allow_build_context = True
    phase.save()
    dockerfile = f'FROM {scorer_image}\nCOPY run.py /app/\nWORKDIR /app\nCMD ["python", "run.py"]\n'
    context = h.tar_bytes(
        [
            h.file_entry("Dockerfile", dockerfile.encode()),
            h.file_entry("run.py", h.PREDICT_ONLY.encode()),
        ],
        gz=True,
    )

    response = api(participant).post(
        url(competition), {"file": SimpleUploadedFile("context.tar.gz", context)}
    )
    assert response.status_code == 202, response.json()
    assert submission_score(submission_id=response.json()["id"], runner=runner)

    submission = Submission.objects.get(pk=response.json()["id"])
    loaded_tags.append(submission.container_image)
    assert submission.status == Submission.Status.SCORED, submission.error_message
    assert {s.metric: s.value for s in submission.scores.filter(split="public")} == {
        "roc_auc": 1.0,
        "accuracy": 1.0,
    }
    log = SandboxRun.objects.get(submission=submission, stage="inference").log
    assert "predicted 10 rows in /app" in log


def test_a_build_context_is_refused_at_upload_on_a_phase_that_takes_images_only(
    api, participant, container_competition
):
    context = h.tar_bytes([h.file_entry("Dockerfile", b"FROM heldout-scorer:latest\nCMD x\n")])

    response = api(participant).post(
        url(container_competition), {"file": SimpleUploadedFile("context.tar", context)}
    )

    assert response.status_code == 400
    assert "which this phase does not accept" in response.json()["problems"][0]["message"]


def test_the_probe_file_really_holds_the_truths_fingerprint():
    """The truth-scan tests (here and in test_abuse_containers.py) would pass vacuously if
    the probe named nothing real."""
    digest, marker = truth_probe().decode().split()
    truth = factories.truth_csv().encode()
    assert digest == hashlib.sha256(truth).hexdigest()
    assert bytes.fromhex(marker) in truth
    assert bytes.fromhex(marker) not in TEST_CSV.encode()
    assert truth.startswith(bytes.fromhex(marker))
